//! `tiny`: the smallest correct synchronous provider, on the raw ABI, for
//! the benchmarks. Every callback returns at once with S_OK; SEND_BUFFERS
//! forwards the bytes to the destination's node over the simulated network
//! (the node is read from the transport ID, which the simulator lays out as
//! `25.<host+1>.<iface>.<n>`); the receiving node indicates them on its
//! first instance. It keeps no per-call state and allocates nothing per call
//! on its own (the simulator copies what it sends).
#![allow(dead_code)]

use cpsim_sim::abi::*;
use cpsim_sim::ffi;
use cpsim_sim::net::NetAddr;
use cpsim_sim::{Cx, Provider, ProviderFactory, Tid};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub const PORT: u16 = 4242;

/// Makes tiny providers: `instances` instances per host.
pub struct TinyFactory {
    pub instances: u32,
    /// ESTABLISH_SESSION_INDICATIONs seen (all hosts).
    pub established: Arc<AtomicU64>,
}

impl TinyFactory {
    pub fn new(instances: u32) -> Arc<TinyFactory> {
        Arc::new(TinyFactory {
            instances,
            established: Arc::default(),
        })
    }
}

impl ProviderFactory for TinyFactory {
    fn name(&self) -> String {
        "tiny".into()
    }
    fn create(&self, _host: &str) -> Box<dyn Provider> {
        Box::new(Tiny {
            instances: self.instances,
            node: Arc::new(Node {
                established: self.established.clone(),
                handles: Mutex::new(Vec::new()),
            }),
        })
    }
}

/// One host's state; every instance's user context points at it.
pub struct Node {
    established: Arc<AtomicU64>,
    handles: Mutex<Vec<CPNATFWT_PROVIDER_INSTANCE>>,
}

pub struct Tiny {
    instances: u32,
    node: Arc<Node>,
}

pub static TABLE: CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE =
    CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE {
        size: DISPATCH_TABLE_SIZE,
        establishSessionIndication: Some(establish),
        terminateSessionIndication: Some(terminate),
        transitionActive: Some(ok2),
        transitionDormant: Some(ok2),
        addTransportId: Some(tid_ok),
        removeTransportId: Some(tid_ok),
        reachTransportId: Some(reach),
        sendBuffers: Some(send_buffers),
    };

impl Provider for Tiny {
    fn start(&mut self, cx: &Cx) {
        let node = self.node.clone();
        let _ = cx.bind(PORT, move |_cx, _from, data| node.receive(data));
        let ctx = Arc::as_ptr(&self.node) as *mut c_void;
        let mut handles = Vec::with_capacity(self.instances as usize);
        for _ in 0..self.instances {
            let mut h = CPNATFWT_PROVIDER_INSTANCE::NULL;
            // SAFETY: a full static table, a context that outlives every
            // instance (the provider keeps the node until stop), an out pointer.
            let hr = unsafe { ffi::CPNatfwtCreateProviderInstance(&TABLE, ctx, &mut h) };
            assert_eq!(hr, S_OK);
            handles.push(h);
        }
        // Known before Register: ESTABLISH may be delivered inside it.
        *self.node.handles.lock() = handles.clone();
        for h in handles {
            let mut luid = IF_LUID { Value: 0 };
            // SAFETY: NULL name and SDDL, a LUID that outlives the call.
            let hr = unsafe {
                ffi::CPNatfwtRegisterProviderInstance(
                    h,
                    std::ptr::null_mut(),
                    &mut luid,
                    0,
                    std::ptr::null_mut(),
                )
            };
            assert_eq!(hr, S_OK);
        }
    }

    fn stop(&mut self, cx: &Cx) {
        let handles = std::mem::take(&mut *self.node.handles.lock());
        for h in handles {
            // SAFETY: handles Create returned, destroyed once, here.
            unsafe {
                ffi::CPNatfwtDeregisterProviderInstance(h);
                ffi::CPNatfwtDestroyProviderInstance(h);
            }
        }
        cx.unbind(PORT);
    }
}

impl Node {
    /// A datagram from a peer: `[dst len][dst][src len][src][payload]`.
    fn receive(&self, data: &[u8]) {
        let Some(h) = self.handles.lock().first().copied() else {
            return;
        };
        let dl = data[0] as usize;
        let sl = data[1 + dl] as usize;
        let mut dst = [0u8; 16];
        let mut src = [0u8; 16];
        dst[..dl].copy_from_slice(&data[1..1 + dl]);
        src[..sl].copy_from_slice(&data[2 + dl..2 + dl + sl]);
        let payload = &data[2 + dl + sl..];
        let mut l = CPNATFWT_TRANSPORT_ID {
            size: dl as u16,
            transportId: dst.as_mut_ptr(),
        };
        let mut r = CPNATFWT_TRANSPORT_ID {
            size: sl as u16,
            transportId: src.as_mut_ptr(),
        };
        let mut buf = CPNATFWT_BUFFER {
            next: std::ptr::null_mut(),
            size: payload.len() as u32,
            buffer: payload.as_ptr() as *mut u8,
        };
        // SAFETY: locals that outlive the call; no completion routine, so
        // the platform is done with them when it returns.
        unsafe {
            ffi::CPNatfwtIndicateReceivedBuffers(
                h,
                &mut l,
                &mut r,
                &mut buf,
                std::ptr::null_mut(),
                None,
            );
        }
    }
}

unsafe extern "system" fn establish(_h: CPNATFWT_PROVIDER_INSTANCE, ctx: *mut c_void) {
    // SAFETY: the context is the node, alive while its instances are.
    let node = unsafe { &*(ctx as *const Node) };
    node.established.fetch_add(1, Ordering::Relaxed);
}

unsafe extern "system" fn terminate(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    _ctx: *mut c_void,
    _reason: CPNATFWT_SESSION_TERMINATION_REASON,
) {
}

unsafe extern "system" fn ok2(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    _ctx: *mut c_void,
    _cctx: *mut c_void,
    _routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    S_OK
}

unsafe extern "system" fn tid_ok(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    _ctx: *mut c_void,
    _t: *mut CPNATFWT_TRANSPORT_ID,
    _cctx: *mut c_void,
    _routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    S_OK
}

/// REACH: succeeds for any well-formed ID (the benchmarks only ask for IDs
/// another instance holds).
pub unsafe extern "system" fn reach(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    _ctx: *mut c_void,
    t: *mut CPNATFWT_TRANSPORT_ID,
    _cctx: *mut c_void,
    _routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    // SAFETY: the platform's argument, valid during the call.
    let size = unsafe { (*t).size };
    if size == 4 || size == 16 {
        S_OK
    } else {
        E_INVALIDARG
    }
}

thread_local! {
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn send_buffers(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    _ctx: *mut c_void,
    local: *mut CPNATFWT_TRANSPORT_ID,
    remote: *mut CPNATFWT_TRANSPORT_ID,
    _endpoint_luid: u64,
    mut chain: *mut CPNATFWT_BUFFER,
    _cctx: *mut c_void,
    _routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    let Some(cx) = Cx::current() else {
        return E_FAIL;
    };
    OUT.with(|out| {
        let mut out = out.borrow_mut();
        out.clear();
        // SAFETY: the platform's arguments, valid during the call.
        let (l, r) = unsafe { (&*local, &*remote) };
        // SAFETY: as above: `size` bytes at `transportId`.
        let (lb, rb) = unsafe {
            (
                std::slice::from_raw_parts(l.transportId, l.size as usize),
                std::slice::from_raw_parts(r.transportId, r.size as usize),
            )
        };
        let Some(dst) = Tid::from_bytes(rb) else {
            return E_INVALIDARG;
        };
        out.push(rb.len() as u8);
        out.extend_from_slice(rb);
        out.push(lb.len() as u8);
        out.extend_from_slice(lb);
        while !chain.is_null() {
            // SAFETY: the platform's well-formed chain.
            let b = unsafe { &*chain };
            if b.size > 0 {
                // SAFETY: `size` bytes at `buffer`.
                out.extend_from_slice(unsafe {
                    std::slice::from_raw_parts(b.buffer, b.size as usize)
                });
            }
            chain = b.next;
        }
        let host = if dst.is_v4() {
            dst.as_bytes()[1]
        } else {
            dst.as_bytes()[5]
        };
        cx.send_to(
            PORT,
            NetAddr {
                node: host - 1,
                port: PORT,
            },
            &out,
        );
        S_OK
    })
}
