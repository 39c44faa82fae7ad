//! The native backend end to end, against the stand-in platform: the
//! simulator's C library (`cpsim-capi`: `libcpsim_capi.so` here,
//! `cpsim_capi.dll` under Wine), loaded at run time like `iphlpapi.dll`.
//!
//! A raw-ABI provider runs through the bridge: callbacks arrive on the
//! platform's thread, TRANSITION_ACTIVE and REACH pend (ERROR_IO_PENDING)
//! and are completed from the provider's worker thread, received data is
//! indicated from that thread too. The platform's behaviour, as the bridge
//! recorded it, is judged by sim-cp's platform checker; a deliberately
//! faulty stand-in is caught. Missing exports are a clear error.

mod common;

use common::{standin, World};
use cpsim_native::{NativeError, NativePlatform};
use cpsim_sim::abi::*;
use cpsim_sim::trace::What;
use cpsim_sim::Callback;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------
// A raw-ABI provider with a worker thread

enum Job {
    Complete(CPNATFWT_PLATFORM_COMPLETION_ROUTINE, usize, HRESULT),
    Deliver {
        to: u64,
        local: Vec<u8>,
        remote: Vec<u8>,
        data: Vec<u8>,
    },
}

struct Shared {
    /// Transport ID bytes -> holder's handle.
    dir: Mutex<HashMap<Vec<u8>, u64>>,
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    callback_threads: Mutex<Vec<std::thread::ThreadId>>,
    activation: Activation,
}

/// How the test provider answers TRANSITION_ACTIVE.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Activation {
    /// Pend, and complete from the worker thread.
    Pend,
    /// Fail synchronously.
    Fail,
    /// The COMP-3 bug: return S_OK, and complete from the worker anyway.
    SyncThenComplete,
    /// The COMP-4 bug: pend, and complete twice from the worker.
    CompleteTwice,
}

struct Node {
    shared: Arc<Shared>,
}

fn node<'a>(user: *mut c_void) -> &'a Node {
    // SAFETY: every user context this provider hands out is a leaked Node.
    unsafe { &*(user as *const Node) }
}

fn post(n: &Node, job: Job) {
    if let Some(tx) = n.shared.tx.lock().unwrap().as_ref() {
        let _ = tx.send(job);
    }
}

fn tid_bytes(t: *const CPNATFWT_TRANSPORT_ID) -> Vec<u8> {
    // SAFETY: the platform's transport ID, valid during the callback.
    unsafe {
        let t = &*t;
        std::slice::from_raw_parts(t.transportId, t.size as usize).to_vec()
    }
}

fn seen(n: &Node) {
    n.shared
        .callback_threads
        .lock()
        .unwrap()
        .push(std::thread::current().id());
}

unsafe extern "system" fn establish(_h: CPNATFWT_PROVIDER_INSTANCE, user: *mut c_void) {
    seen(node(user));
}

unsafe extern "system" fn terminate(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    _reason: CPNATFWT_SESSION_TERMINATION_REASON,
) {
    seen(node(user));
}

unsafe extern "system" fn transition_active(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    ctx: *mut c_void,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    let n = node(user);
    seen(n);
    match n.shared.activation {
        Activation::Fail => E_FAIL,
        Activation::Pend => {
            // Pended, completed by the worker thread.
            post(n, Job::Complete(routine, ctx as usize, S_OK));
            E_PENDING_IO
        }
        Activation::SyncThenComplete => {
            post(n, Job::Complete(routine, ctx as usize, S_OK));
            S_OK
        }
        Activation::CompleteTwice => {
            post(n, Job::Complete(routine, ctx as usize, S_OK));
            post(n, Job::Complete(routine, ctx as usize, S_OK));
            E_PENDING_IO
        }
    }
}

unsafe extern "system" fn transition_dormant(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    _ctx: *mut c_void,
    _routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    seen(node(user));
    S_OK
}

unsafe extern "system" fn add(
    h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    t: *mut CPNATFWT_TRANSPORT_ID,
    _ctx: *mut c_void,
    _routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    let n = node(user);
    seen(n);
    let mut d = n.shared.dir.lock().unwrap();
    match d.get(&tid_bytes(t)) {
        Some(holder) if *holder != h.as_u64() => E_FAIL,
        _ => {
            d.insert(tid_bytes(t), h.as_u64());
            S_OK
        }
    }
}

unsafe extern "system" fn remove(
    h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    t: *mut CPNATFWT_TRANSPORT_ID,
    _ctx: *mut c_void,
    _routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    let n = node(user);
    seen(n);
    let mut d = n.shared.dir.lock().unwrap();
    if d.get(&tid_bytes(t)) == Some(&h.as_u64()) {
        d.remove(&tid_bytes(t));
    }
    S_OK
}

unsafe extern "system" fn reach(
    h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    t: *mut CPNATFWT_TRANSPORT_ID,
    ctx: *mut c_void,
    routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    let n = node(user);
    seen(n);
    let reachable = n
        .shared
        .dir
        .lock()
        .unwrap()
        .get(&tid_bytes(t))
        .is_some_and(|holder| *holder != h.as_u64());
    if !reachable {
        return E_FAIL;
    }
    post(n, Job::Complete(routine, ctx as usize, S_OK));
    E_PENDING_IO
}

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn send(
    _h: CPNATFWT_PROVIDER_INSTANCE,
    user: *mut c_void,
    local: *mut CPNATFWT_TRANSPORT_ID,
    remote: *mut CPNATFWT_TRANSPORT_ID,
    _endpoint: u64,
    mut chain: *mut CPNATFWT_BUFFER,
    _ctx: *mut c_void,
    _routine: CPNATFWT_PLATFORM_COMPLETION_ROUTINE,
) -> HRESULT {
    let n = node(user);
    seen(n);
    let mut data = Vec::new();
    while !chain.is_null() {
        // SAFETY: the platform's chain, valid during the call.
        let b = unsafe { &*chain };
        if b.size > 0 {
            // SAFETY: the element says `size` bytes live at `buffer`.
            data.extend_from_slice(unsafe {
                std::slice::from_raw_parts(b.buffer, b.size as usize)
            });
        }
        chain = b.next;
    }
    let (l, r) = (tid_bytes(local), tid_bytes(remote));
    let Some(to) = n.shared.dir.lock().unwrap().get(&r).copied() else {
        return E_FAIL;
    };
    post(
        n,
        Job::Deliver {
            to,
            local: r,
            remote: l,
            data,
        },
    );
    S_OK
}

static TABLE: CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE =
    CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE {
        size: DISPATCH_TABLE_SIZE,
        establishSessionIndication: Some(establish),
        terminateSessionIndication: Some(terminate),
        transitionActive: Some(transition_active),
        transitionDormant: Some(transition_dormant),
        addTransportId: Some(add),
        removeTransportId: Some(remove),
        reachTransportId: Some(reach),
        sendBuffers: Some(send),
    };

fn worker(platform: Arc<NativePlatform>, rx: mpsc::Receiver<Job>) {
    for job in rx {
        std::thread::sleep(Duration::from_millis(2));
        match job {
            Job::Complete(routine, ctx, status) => {
                if let Some(f) = routine {
                    // SAFETY: the routine and context of a pended call, once.
                    unsafe { f(ctx as *mut c_void, status) };
                }
            }
            Job::Deliver {
                to,
                mut local,
                mut remote,
                mut data,
            } => {
                let mut l = CPNATFWT_TRANSPORT_ID {
                    size: local.len() as u16,
                    transportId: local.as_mut_ptr(),
                };
                let mut r = CPNATFWT_TRANSPORT_ID {
                    size: remote.len() as u16,
                    transportId: remote.as_mut_ptr(),
                };
                let mut b = CPNATFWT_BUFFER {
                    next: std::ptr::null_mut(),
                    size: data.len() as u32,
                    buffer: data.as_mut_ptr(),
                };
                // SAFETY: locals that outlive the call; no completion routine.
                unsafe {
                    platform.indicate_received_buffers(
                        CPNATFWT_PROVIDER_INSTANCE::from_u64(to),
                        &mut l,
                        &mut r,
                        &mut b,
                        std::ptr::null_mut(),
                        None,
                    )
                };
            }
        }
    }
}

struct Run {
    platform: Arc<NativePlatform>,
    outcome: serde_json::Value,
    threads: Vec<std::thread::ThreadId>,
}

/// Two hosts, one instance each, through the bridge; `script` runs against
/// the world between registration and clean-up.
fn run(config: &str, activation: Activation, script: impl FnOnce(&World)) -> Run {
    let platform = Arc::new(NativePlatform::load(standin()).expect("the stand-in has the API"));
    let world = World::new(config);
    let (tx, rx) = mpsc::channel();
    let shared = Arc::new(Shared {
        dir: Mutex::new(HashMap::new()),
        tx: Mutex::new(Some(tx)),
        callback_threads: Mutex::new(Vec::new()),
        activation,
    });
    let p2 = platform.clone();
    let w = std::thread::spawn(move || worker(p2, rx));
    let mut handles = Vec::new();
    for host in ["A", "B"] {
        world.use_host(host);
        let user = Box::into_raw(Box::new(Node {
            shared: shared.clone(),
        })) as *mut c_void;
        let mut h = CPNATFWT_PROVIDER_INSTANCE::NULL;
        let mut luid = IF_LUID { Value: 0 };
        // SAFETY: a static table, a user context that is never freed, and
        // out parameters that outlive the calls.
        unsafe {
            assert_eq!(
                platform.create_provider_instance(&TABLE, user, &mut h),
                S_OK
            );
            assert_eq!(
                platform.register_provider_instance(
                    h,
                    std::ptr::null_mut(),
                    &mut luid,
                    0,
                    std::ptr::null_mut()
                ),
                S_OK
            );
        }
        assert_ne!(luid.Value, 0);
        handles.push(h);
    }
    script(&world);
    std::thread::sleep(Duration::from_millis(400));
    for h in handles {
        // SAFETY: handles Create returned, not destroyed yet.
        unsafe {
            platform.deregister_provider_instance(h);
            platform.destroy_provider_instance(h);
        }
    }
    shared.tx.lock().unwrap().take();
    w.join().unwrap();
    let outcome = world.finish();
    let threads = shared.callback_threads.lock().unwrap().clone();
    Run {
        platform,
        outcome,
        threads,
    }
}

fn rules(v: &serde_json::Value) -> Vec<String> {
    v["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!("{} {}", v["rule"], v["message"]))
        .collect()
}

#[test]
fn a_provider_runs_on_the_stand_in_through_the_bridge() {
    let r = run(
        r#"{"hosts": ["A", "B"], "seed": 1}"#,
        Activation::Pend,
        |w| {
            w.at(10, r#"{"do": "listen", "host": "B", "on": true}"#);
            w.at(
                60,
                r#"{"do": "send", "from": "A", "to": "B", "bytes": 100}"#,
            );
            w.at(
                90,
                r#"{"do": "send", "from": "A", "to": "B", "family": "v6", "bytes": 30}"#,
            );
            w.at(150, r#"{"do": "dormant", "host": "A"}"#);
        },
    );
    // The platform (the simulator inside the DLL) saw no provider violation
    // and its own checker found no platform bug.
    assert!(rules(&r.outcome).is_empty(), "{:#?}", rules(&r.outcome));
    assert_eq!(r.outcome["delivered"], 2, "{}", r.outcome["sent"]);
    // The bridge's record of the same run passes the same checker.
    let found: Vec<String> = r.platform.check().iter().map(|v| v.headline()).collect();
    assert!(found.is_empty(), "{found:#?}");
    // It saw what it had to: pended calls, completions from another thread,
    // indications, and callbacks on a thread other than the test's.
    let t = r.platform.trace();
    let pended = t.events.iter().any(|e| {
        matches!(e.what, What::Return { cb: Callback::TransitionActive, hr: Some(hr), .. } if hr == E_PENDING_IO)
    });
    assert!(pended, "TRANSITION_ACTIVE pended");
    assert!(t.events.iter().any(|e| matches!(
        e.what,
        What::Complete {
            early: false,
            status: 0,
            ..
        }
    )));
    let indicated = t
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.what,
                What::Function {
                    f: cpsim_sim::trace::PlatformFn::CPNatfwtIndicateReceivedBuffers,
                    hr: 0,
                    ..
                }
            )
        })
        .count();
    assert_eq!(indicated, 2);
    let me = std::thread::current().id();
    assert!(
        r.threads.iter().any(|t| *t != me),
        "callbacks came from the platform's thread"
    );
}

#[test]
fn the_checker_catches_a_faulty_native_platform() {
    // The stand-in hands callbacks a wrong user context (SESS-6): the bridge
    // still gives the provider its own, and the checker reports the platform.
    let r = run(
        r#"{"hosts": ["A", "B"], "faults": ["wrong-user-context"]}"#,
        Activation::Pend,
        |w| w.at(10, r#"{"do": "listen", "host": "B", "on": true}"#),
    );
    let found: Vec<String> = r.platform.check().iter().map(|v| v.headline()).collect();
    assert!(found.iter().any(|v| v.starts_with("SESS-6")), "{found:#?}");

    // A failed TRANSITION_ACTIVE that the platform ignores (STATE-2).
    let r = run(
        r#"{"hosts": ["A", "B"], "faults": ["ignore-failed-activation"]}"#,
        Activation::Fail,
        |w| w.at(10, r#"{"do": "listen", "host": "B", "on": true}"#),
    );
    let found: Vec<String> = r.platform.check().iter().map(|v| v.headline()).collect();
    assert!(found.iter().any(|v| v.starts_with("STATE-2")), "{found:#?}");
}

#[test]
fn the_bridge_catches_late_and_second_completions_and_keeps_them_from_the_platform() {
    let listen = |w: &World| w.at(10, r#"{"do": "listen", "host": "B", "on": true}"#);
    for (activation, rule) in [
        (Activation::SyncThenComplete, "COMP-3"),
        (Activation::CompleteTwice, "COMP-4"),
    ] {
        let r = run(r#"{"hosts": ["A", "B"], "seed": 4}"#, activation, listen);
        let found: Vec<String> = r
            .platform
            .provider_violations()
            .iter()
            .map(|v| v.headline())
            .collect();
        // Every activation broke the rule once.
        let activations = r
            .platform
            .trace()
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e.what,
                    What::Call {
                        cb: Callback::TransitionActive,
                        ..
                    }
                )
            })
            .count();
        assert!(activations >= 1);
        assert_eq!(found.len(), activations, "{found:#?}");
        assert!(
            found
                .iter()
                .all(|v| v.starts_with(rule) && v.contains("TRANSITION_ACTIVE")),
            "{found:#?}"
        );
        // The bridge did not pass the bad completion on: the stand-in saw
        // a well-behaved provider, and the platform checker is quiet.
        assert!(rules(&r.outcome).is_empty(), "{:#?}", rules(&r.outcome));
        let platform: Vec<String> = r.platform.check().iter().map(|v| v.headline()).collect();
        assert!(platform.is_empty(), "{platform:#?}");
    }
    // The correct provider: no provider violation.
    let r = run(
        r#"{"hosts": ["A", "B"], "seed": 4}"#,
        Activation::Pend,
        listen,
    );
    assert!(r.platform.provider_violations().is_empty());
}

#[test]
fn missing_exports_say_the_api_is_not_available() {
    match NativePlatform::system() {
        Err(e @ NativeError::NotAvailable { .. }) => {
            assert!(
                e.to_string()
                    .contains("the Connectivity Platform API is not available on this system"),
                "{e}"
            );
        }
        Err(e) => panic!("unexpected: {e}"),
        // Only a real Windows 7 gets here.
        Ok(p) => eprintln!("{} has the CP API", p.path().display()),
    }
    // A library that loads but has none of the five exports.
    let other = if cfg!(windows) {
        "kernel32.dll"
    } else {
        "libm.so.6"
    };
    let e = NativePlatform::load(other).err().expect("no CP API there");
    assert!(matches!(e, NativeError::NotAvailable { ref missing, .. } if missing.len() == 5));
    assert!(e.to_string().contains("not available on this system"));
    // A library that does not exist.
    let e = NativePlatform::load("no-such-library-cpsim.dll")
        .err()
        .expect("no file");
    assert!(matches!(e, NativeError::Load { .. }), "{e}");
}

/// Registers one instance named "vpn" on a stand-in world made with
/// `config`, and returns what the checker found in the bridge's record.
fn register_named(config: &str) -> Vec<String> {
    let platform = NativePlatform::load(standin()).expect("the stand-in has the API");
    let world = World::new(config);
    world.use_host("A");
    let shared = Arc::new(Shared {
        dir: Mutex::new(HashMap::new()),
        tx: Mutex::new(None),
        callback_threads: Mutex::new(Vec::new()),
        activation: Activation::Pend,
    });
    let user = Box::into_raw(Box::new(Node { shared })) as *mut c_void;
    let mut name: Vec<u16> = "vpn".encode_utf16().chain([0]).collect();
    let mut h = CPNATFWT_PROVIDER_INSTANCE::NULL;
    let mut luid = IF_LUID { Value: 0 };
    // SAFETY: a static table, a user context that is never freed, a
    // NUL-terminated name and out parameters that outlive the calls.
    unsafe {
        assert_eq!(
            platform.create_provider_instance(&TABLE, user, &mut h),
            S_OK
        );
        assert_eq!(
            platform.register_provider_instance(
                h,
                name.as_mut_ptr(),
                &mut luid,
                0,
                std::ptr::null_mut()
            ),
            S_OK
        );
        platform.deregister_provider_instance(h);
        platform.destroy_provider_instance(h);
    }
    world.finish();
    platform.check().iter().map(|v| v.headline()).collect()
}

#[test]
fn reg_9_the_bridge_sees_a_platform_write_the_callers_name() {
    let found = register_named(r#"{"hosts": ["A"]}"#);
    assert!(!found.iter().any(|v| v.starts_with("REG-9")), "{found:#?}");
    let found = register_named(r#"{"hosts": ["A"], "faults": ["write-caller-strings"]}"#);
    assert!(found.iter().any(|v| v.starts_with("REG-9")), "{found:#?}");
}
