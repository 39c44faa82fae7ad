//! The C ABI of the `CPNatfwt*` API (docs/CONTRACT.md §1), as `#[repr(C)]` Rust.
//!
//! Everything here mirrors `sim-cp/include/cpnatfwt.h` field for field; the
//! `abi_layout` test compiles a C program against that header and compares
//! every size and offset with the values below.
//!
//! Callback pointers are `Option<extern "system" fn ...>` so that a NULL entry
//! in a dispatch table is representable (and caught: LIFE-9) instead of being
//! undefined behaviour.
#![allow(non_camel_case_types, non_snake_case)]

use std::ffi::c_void;

/// `HRESULT`: a signed 32-bit status code.
pub type HRESULT = i32;
/// `WCHAR`: one UTF-16 code unit.
pub type WCHAR = u16;

/// `S_OK`.
pub const S_OK: HRESULT = 0;
/// `S_FALSE`: a success code the platform reads as failure (COMP-1).
pub const S_FALSE: HRESULT = 1;
/// `HRESULT_FROM_WIN32(ERROR_IO_PENDING)`: the call is pended.
pub const E_PENDING_IO: HRESULT = 0x8007_03E5_u32 as i32;
/// `E_HANDLE`: unknown or destroyed instance handle.
pub const E_HANDLE: HRESULT = 0x8007_0006_u32 as i32;
/// `E_POINTER`: NULL where a pointer is required.
pub const E_POINTER: HRESULT = 0x8000_4003_u32 as i32;
/// `E_INVALIDARG`: malformed argument.
pub const E_INVALIDARG: HRESULT = 0x8007_0057_u32 as i32;
/// `E_FAIL`: unspecified failure.
pub const E_FAIL: HRESULT = 0x8000_4005_u32 as i32;
/// `HRESULT_FROM_WIN32(ERROR_INVALID_STATE)`: call not allowed in the current state.
pub const E_INVALID_STATE: HRESULT = 0x8007_139F_u32 as i32;
/// `HRESULT_FROM_WIN32(ERROR_NOT_FOUND)`: input LUID not owned by this provider.
pub const E_NOT_FOUND: HRESULT = 0x8007_0490_u32 as i32;

/// `CPNATFWT_MAX_INTERFACE_NAME_LENGTH`, in WCHARs, not counting the NUL.
pub const CPNATFWT_MAX_INTERFACE_NAME_LENGTH: usize = 256;

/// `HRESULT_FROM_WIN32(code)`.
pub const fn hresult_from_win32(code: u32) -> HRESULT {
    if code == 0 {
        0
    } else {
        ((code & 0xFFFF) | (7 << 16) | 0x8000_0000) as i32
    }
}

/// `CPNATFWT_PROVIDER_INSTANCE`: an opaque handle. The simulator never
/// dereferences it; it encodes which world, host and slot it names.
#[repr(transparent)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct CPNATFWT_PROVIDER_INSTANCE(pub *mut c_void);

// SAFETY: the handle is an opaque integer in pointer clothing; it is never
// dereferenced, so sending it between threads is sound.
unsafe impl Send for CPNATFWT_PROVIDER_INSTANCE {}
// SAFETY: as above, it is only ever compared and decoded.
unsafe impl Sync for CPNATFWT_PROVIDER_INSTANCE {}

impl CPNATFWT_PROVIDER_INSTANCE {
    /// The NULL handle.
    pub const NULL: Self = Self(std::ptr::null_mut());
    /// The handle as a plain integer.
    pub fn as_u64(self) -> u64 {
        self.0 as usize as u64
    }
    /// The handle with this integer value.
    pub fn from_u64(v: u64) -> Self {
        Self(v as usize as *mut c_void)
    }
}

/// `CPNATFWT_TRANSPORT_ID`: an IPv4 or IPv6 address as bytes.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct CPNATFWT_TRANSPORT_ID {
    pub size: u16,
    pub transportId: *mut u8,
}

/// `CPNATFWT_BUFFER`: one element of a buffer chain.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct CPNATFWT_BUFFER {
    pub next: *mut CPNATFWT_BUFFER,
    pub size: u32,
    pub buffer: *mut u8,
}

/// `CPNATFWT_SESSION_TERMINATION_REASON`, values 0..4 in this order.
///
/// Only the platform produces values of this type, so a Rust enum is sound
/// on the receiving (provider) side.
#[repr(C)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum CPNATFWT_SESSION_TERMINATION_REASON {
    ProviderRequest = 0,
    PlatformShutdown = 1,
    ProviderTimeout = 2,
    ProviderOtherFailure = 3,
    OtherCommunicationError = 4,
}

/// `IF_LUID` / `NET_LUID`: a 64-bit interface identifier.
#[repr(C)]
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct IF_LUID {
    pub Value: u64,
}

/// `CPNATFWT_PLATFORM_COMPLETION_ROUTINE`: the platform's completion routine.
pub type CPNATFWT_PLATFORM_COMPLETION_ROUTINE =
    Option<unsafe extern "system" fn(completionContext: *mut c_void, status: HRESULT)>;
/// `CPNATFWT_PROVIDER_COMPLETION_ROUTINE`: the provider's, for IndicateReceivedBuffers.
pub type CPNATFWT_PROVIDER_COMPLETION_ROUTINE =
    Option<unsafe extern "system" fn(completionContext: *mut c_void, status: HRESULT)>;

pub type CPNATFWT_PROVIDER_ESTABLISH_SESSION_INDICATION = Option<
    unsafe extern "system" fn(
        providerInstance: CPNATFWT_PROVIDER_INSTANCE,
        userContext: *mut c_void,
    ),
>;
pub type CPNATFWT_PROVIDER_TERMINATE_SESSION_INDICATION = Option<
    unsafe extern "system" fn(
        providerInstance: CPNATFWT_PROVIDER_INSTANCE,
        userContext: *mut c_void,
        terminationReason: CPNATFWT_SESSION_TERMINATION_REASON,
    ),
>;
pub type CPNATFWT_PROVIDER_TRANSITION_ACTIVE = Option<
    unsafe extern "system" fn(
        providerInstance: CPNATFWT_PROVIDER_INSTANCE,
        userContext: *mut c_void,
        completionContext: *mut c_void,
        completionRoutine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    ) -> HRESULT,
>;
pub type CPNATFWT_PROVIDER_TRANSITION_DORMANT = CPNATFWT_PROVIDER_TRANSITION_ACTIVE;
pub type CPNATFWT_PROVIDER_ADD_TRANSPORT_ID = Option<
    unsafe extern "system" fn(
        providerInstance: CPNATFWT_PROVIDER_INSTANCE,
        userContext: *mut c_void,
        transportId: *mut CPNATFWT_TRANSPORT_ID,
        completionContext: *mut c_void,
        completionRoutine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    ) -> HRESULT,
>;
pub type CPNATFWT_PROVIDER_REMOVE_TRANSPORT_ID = CPNATFWT_PROVIDER_ADD_TRANSPORT_ID;
pub type CPNATFWT_PROVIDER_REACH_TRANSPORT_ID = CPNATFWT_PROVIDER_ADD_TRANSPORT_ID;
pub type CPNATFWT_PROVIDER_SEND_BUFFERS = Option<
    unsafe extern "system" fn(
        providerInstance: CPNATFWT_PROVIDER_INSTANCE,
        userContext: *mut c_void,
        localTransportId: *mut CPNATFWT_TRANSPORT_ID,
        remoteTransportId: *mut CPNATFWT_TRANSPORT_ID,
        endpointLuid: u64,
        bufferChain: *mut CPNATFWT_BUFFER,
        completionContext: *mut c_void,
        completionRoutine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
    ) -> HRESULT,
>;

/// `CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE`.
#[repr(C)]
#[derive(Copy, Clone, Debug)]
pub struct CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE {
    pub size: u32,
    pub establishSessionIndication: CPNATFWT_PROVIDER_ESTABLISH_SESSION_INDICATION,
    pub terminateSessionIndication: CPNATFWT_PROVIDER_TERMINATE_SESSION_INDICATION,
    pub transitionActive: CPNATFWT_PROVIDER_TRANSITION_ACTIVE,
    pub transitionDormant: CPNATFWT_PROVIDER_TRANSITION_DORMANT,
    pub addTransportId: CPNATFWT_PROVIDER_ADD_TRANSPORT_ID,
    pub removeTransportId: CPNATFWT_PROVIDER_REMOVE_TRANSPORT_ID,
    pub reachTransportId: CPNATFWT_PROVIDER_REACH_TRANSPORT_ID,
    pub sendBuffers: CPNATFWT_PROVIDER_SEND_BUFFERS,
}

/// The size a well-formed dispatch table declares in its `size` field.
pub const DISPATCH_TABLE_SIZE: u32 =
    std::mem::size_of::<CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE>() as u32;

/// The five exported functions, as function-pointer types (the Windows
/// backend resolves them at run time with these types).
pub type PFN_CPNatfwtCreateProviderInstance = unsafe extern "system" fn(
    dispatchTable: *const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE,
    providerInstanceUserContext: *mut c_void,
    providerInstance: *mut CPNATFWT_PROVIDER_INSTANCE,
) -> HRESULT;
pub type PFN_CPNatfwtRegisterProviderInstance = unsafe extern "system" fn(
    providerInstance: CPNATFWT_PROVIDER_INSTANCE,
    interfaceFriendlyName: *mut WCHAR,
    interfaceLuid: *mut IF_LUID,
    flags: u32,
    sddl: *mut WCHAR,
) -> HRESULT;
pub type PFN_CPNatfwtDeregisterProviderInstance =
    unsafe extern "system" fn(providerInstance: CPNATFWT_PROVIDER_INSTANCE) -> HRESULT;
pub type PFN_CPNatfwtDestroyProviderInstance =
    unsafe extern "system" fn(providerInstance: CPNATFWT_PROVIDER_INSTANCE);
pub type PFN_CPNatfwtIndicateReceivedBuffers = unsafe extern "system" fn(
    providerInstance: CPNATFWT_PROVIDER_INSTANCE,
    localTransportId: *mut CPNATFWT_TRANSPORT_ID,
    remoteTransportId: *mut CPNATFWT_TRANSPORT_ID,
    bufferChain: *mut CPNATFWT_BUFFER,
    completionContext: *mut c_void,
    completionRoutine: CPNATFWT_PROVIDER_COMPLETION_ROUTINE,
) -> HRESULT;

/// One struct's name, size, and (field, offset) pairs.
pub type StructLayout = (&'static str, usize, Vec<(&'static str, usize)>);

/// Every struct of the ABI with its size and the offset of each field, in
/// declaration order. The layout test compares this list with the C compiler's.
pub fn layout_table() -> Vec<StructLayout> {
    use std::mem::{offset_of, size_of};
    type T = CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE;
    vec![
        (
            "CPNATFWT_TRANSPORT_ID",
            size_of::<CPNATFWT_TRANSPORT_ID>(),
            vec![
                ("size", offset_of!(CPNATFWT_TRANSPORT_ID, size)),
                (
                    "transportId",
                    offset_of!(CPNATFWT_TRANSPORT_ID, transportId),
                ),
            ],
        ),
        (
            "CPNATFWT_BUFFER",
            size_of::<CPNATFWT_BUFFER>(),
            vec![
                ("next", offset_of!(CPNATFWT_BUFFER, next)),
                ("size", offset_of!(CPNATFWT_BUFFER, size)),
                ("buffer", offset_of!(CPNATFWT_BUFFER, buffer)),
            ],
        ),
        (
            "IF_LUID",
            size_of::<IF_LUID>(),
            vec![("Value", offset_of!(IF_LUID, Value))],
        ),
        (
            "CPNATFWT_SESSION_TERMINATION_REASON",
            size_of::<CPNATFWT_SESSION_TERMINATION_REASON>(),
            vec![],
        ),
        (
            "CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE",
            size_of::<T>(),
            vec![
                ("size", offset_of!(T, size)),
                (
                    "establishSessionIndication",
                    offset_of!(T, establishSessionIndication),
                ),
                (
                    "terminateSessionIndication",
                    offset_of!(T, terminateSessionIndication),
                ),
                ("transitionActive", offset_of!(T, transitionActive)),
                ("transitionDormant", offset_of!(T, transitionDormant)),
                ("addTransportId", offset_of!(T, addTransportId)),
                ("removeTransportId", offset_of!(T, removeTransportId)),
                ("reachTransportId", offset_of!(T, reachTransportId)),
                ("sendBuffers", offset_of!(T, sendBuffers)),
            ],
        ),
    ]
}
