//! Safe instance handles: [`Instance`] owns an instance's life (create,
//! register, deregister, destroy-once); [`InstanceRef`] is the shareable
//! handle workers use to indicate received data.

use super::adapter;
use super::SessionHandler;
use crate::abi::*;
use crate::platform::{Platform, SIMULATED};
use crate::runtime::Cx;
use crate::transport_id::Tid;
use std::sync::Arc;

/// What Register is given.
#[derive(Clone, Debug, Default)]
pub struct RegisterOptions {
    /// The interface's friendly name (None: the platform's default name).
    pub friendly_name: Option<String>,
    /// A LUID from an earlier registration, to get that interface back.
    pub luid: Option<u64>,
    /// A security descriptor in SDDL.
    pub sddl: Option<String>,
}

/// A shareable handle to an instance: enough to indicate received data.
/// It knows its platform, so it works from any thread, with or without a
/// [`Cx`]. Two refs are equal when their handles are.
#[derive(Copy, Clone)]
pub struct InstanceRef {
    pub(crate) handle: CPNATFWT_PROVIDER_INSTANCE,
    pub(crate) platform: &'static dyn Platform,
}

impl PartialEq for InstanceRef {
    fn eq(&self, other: &InstanceRef) -> bool {
        self.handle == other.handle
    }
}

impl Eq for InstanceRef {}

impl std::hash::Hash for InstanceRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.handle.hash(state)
    }
}

impl std::fmt::Debug for InstanceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("InstanceRef").field(&self.handle).finish()
    }
}

impl InstanceRef {
    /// A handle value of the simulator, as the raw ABI gives it.
    pub fn from_raw(handle: CPNATFWT_PROVIDER_INSTANCE) -> InstanceRef {
        InstanceRef::from_raw_on(&SIMULATED, handle)
    }

    /// A handle value of `platform`, as the raw ABI gives it.
    pub fn from_raw_on(
        platform: &'static dyn Platform,
        handle: CPNATFWT_PROVIDER_INSTANCE,
    ) -> InstanceRef {
        InstanceRef { handle, platform }
    }

    /// The raw handle.
    pub fn raw(&self) -> CPNATFWT_PROVIDER_INSTANCE {
        self.handle
    }

    /// The platform the instance lives on.
    pub fn platform(&self) -> &'static dyn Platform {
        self.platform
    }

    /// Hands received bytes to the platform (`CPNatfwtIndicateReceivedBuffers`
    /// without a completion routine: the platform copies before returning).
    pub fn indicate(&self, local: Tid, remote: Tid, data: &[u8]) -> Result<(), HRESULT> {
        let mut lb = [0u8; 16];
        let mut rb = [0u8; 16];
        lb[..local.as_bytes().len()].copy_from_slice(local.as_bytes());
        rb[..remote.as_bytes().len()].copy_from_slice(remote.as_bytes());
        let mut l = CPNATFWT_TRANSPORT_ID {
            size: local.as_bytes().len() as u16,
            transportId: lb.as_mut_ptr(),
        };
        let mut r = CPNATFWT_TRANSPORT_ID {
            size: remote.as_bytes().len() as u16,
            transportId: rb.as_mut_ptr(),
        };
        let mut buf = CPNATFWT_BUFFER {
            next: std::ptr::null_mut(),
            size: data.len() as u32,
            buffer: data.as_ptr() as *mut u8,
        };
        // SAFETY: every pointer is to a local that outlives the call, and
        // without a completion routine the platform is done before returning.
        let hr = unsafe {
            self.platform.indicate_received_buffers(
                self.handle,
                &mut l,
                &mut r,
                &mut buf,
                std::ptr::null_mut(),
                None,
            )
        };
        if hr == S_OK {
            Ok(())
        } else {
            Err(hr)
        }
    }

    /// `CPNatfwtDeregisterProviderInstance` (usable from any worker).
    pub fn deregister(&self) -> Result<(), HRESULT> {
        // SAFETY: a handle value; the platform checks it.
        let hr = unsafe { self.platform.deregister_provider_instance(self.handle) };
        if hr == S_OK {
            Ok(())
        } else {
            Err(hr)
        }
    }
}

/// An instance this provider owns. Destroy consumes it, so Destroy happens
/// at most once (LIFE-5) and no call can follow it (LIFE-1) through this handle.
pub struct Instance {
    r: InstanceRef,
}

impl Instance {
    /// `CPNatfwtCreateProviderInstance` with a safe handler as its user context.
    /// It lives on `cx`'s platform ([`Cx::platform`]).
    pub fn create(cx: &Cx, handler: Arc<dyn SessionHandler>) -> Result<Instance, HRESULT> {
        let platform = cx.platform();
        let ctx = adapter::user_context(cx, handler);
        let mut h = CPNATFWT_PROVIDER_INSTANCE::NULL;
        // SAFETY: a full, static table, a user context the platform keeps
        // alive (`keep_alive`) and a writable out pointer.
        let hr = crate::runtime::with_current(cx, || unsafe {
            platform.create_provider_instance(&adapter::TABLE, ctx, &mut h)
        });
        if hr == S_OK {
            Ok(Instance {
                r: InstanceRef {
                    handle: h,
                    platform,
                },
            })
        } else {
            Err(hr)
        }
    }

    /// The shareable handle.
    pub fn as_ref(&self) -> InstanceRef {
        self.r
    }

    /// `CPNatfwtRegisterProviderInstance`; returns the interface LUID.
    pub fn register(&self, opts: &RegisterOptions) -> Result<u64, HRESULT> {
        let mut name: Option<Vec<u16>> = opts
            .friendly_name
            .as_ref()
            .map(|s| s.encode_utf16().chain([0]).collect());
        let mut sddl: Option<Vec<u16>> = opts
            .sddl
            .as_ref()
            .map(|s| s.encode_utf16().chain([0]).collect());
        let mut luid = IF_LUID {
            Value: opts.luid.unwrap_or(0),
        };
        let np = name
            .as_mut()
            .map_or(std::ptr::null_mut(), |v| v.as_mut_ptr());
        let sp = sddl
            .as_mut()
            .map_or(std::ptr::null_mut(), |v| v.as_mut_ptr());
        // SAFETY: NUL-terminated strings and a LUID that outlive the call.
        let hr = unsafe {
            self.r
                .platform
                .register_provider_instance(self.r.handle, np, &mut luid, 0, sp)
        };
        if hr == S_OK {
            Ok(luid.Value)
        } else {
            Err(hr)
        }
    }

    /// `CPNatfwtDeregisterProviderInstance`.
    pub fn deregister(&self) -> Result<(), HRESULT> {
        self.r.deregister()
    }

    /// `CPNatfwtDestroyProviderInstance`, once.
    pub fn destroy(self) {
        // SAFETY: a handle value; the platform checks it.
        unsafe { self.r.platform.destroy_provider_instance(self.r.handle) };
    }
}
