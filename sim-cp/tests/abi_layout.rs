//! Checks that `include/cpnatfwt.h` and `cpsim_sim::abi` describe the same ABI.
//!
//! The tests write small C programs against the header and build them with
//! the system C compiler (`$CC`, or `cc`). A missing compiler is a failure,
//! not a skip: CI installs one, and a silent skip would hide a broken header.
//!
//! - `c_layout_matches_rust`: a C program prints the size of every struct in
//!   `abi::layout_table()` and the offset of each field, the size of every
//!   pointer typedef, the basic types and the result codes; the output must
//!   equal, line for line, what the Rust side says.
//! - `c_provider_snippet_compiles`: a tiny provider fills a dispatch table
//!   with functions of the header's callback types and calls the five
//!   platform functions through the header's pointer types; it is only
//!   compiled (`-c`), never linked, and `-Werror` turns any type mismatch
//!   into a failure.

use cpsim_sim::abi;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::mem::size_of;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Flags every compile uses: the brief's `-std=c11 -Wall -Werror`, plus the
/// stricter `-Wextra -Wpedantic` so sloppiness in the header is caught too.
const C_FLAGS: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"];

/// Every function-pointer typedef of the header, plus the handle type: all
/// must be exactly pointer-sized.
const POINTER_TYPES: &[&str] = &[
    "CPNATFWT_PROVIDER_INSTANCE",
    "CPNATFWT_PLATFORM_COMPLETION_ROUTINE",
    "CPNATFWT_PROVIDER_COMPLETION_ROUTINE",
    "CPNATFWT_PROVIDER_ESTABLISH_SESSION_INDICATION",
    "CPNATFWT_PROVIDER_TERMINATE_SESSION_INDICATION",
    "CPNATFWT_PROVIDER_TRANSITION_ACTIVE",
    "CPNATFWT_PROVIDER_TRANSITION_DORMANT",
    "CPNATFWT_PROVIDER_ADD_TRANSPORT_ID",
    "CPNATFWT_PROVIDER_REMOVE_TRANSPORT_ID",
    "CPNATFWT_PROVIDER_REACH_TRANSPORT_ID",
    "CPNATFWT_PROVIDER_SEND_BUFFERS",
    "PFN_CPNatfwtCreateProviderInstance",
    "PFN_CPNatfwtRegisterProviderInstance",
    "PFN_CPNatfwtDeregisterProviderInstance",
    "PFN_CPNatfwtDestroyProviderInstance",
    "PFN_CPNatfwtIndicateReceivedBuffers",
    "PFN_CpsimProviderStart",
    "PFN_CpsimProviderStop",
];

/// The size of a field, named by a projection closure (no value needed).
fn size_of_field<T, F>(_project: impl Fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// `(struct, field, size)` for every field of every struct. Offsets alone
/// can miss a wrong field type that padding hides (a `USHORT` against a
/// `u64` followed by a pointer has the same offsets), so field sizes are
/// compared too. A field missing here but present in `layout_table()` shows
/// up in the diff as a line only C prints.
macro_rules! field_sizes {
    ($($ty:ident { $($field:ident),* $(,)? })*) => {
        vec![$($(
            (
                stringify!($ty),
                stringify!($field),
                size_of_field(|v: &abi::$ty| &v.$field),
            ),
        )*)*]
    };
}

fn field_size_table() -> Vec<(&'static str, &'static str, usize)> {
    field_sizes! {
        CPNATFWT_TRANSPORT_ID { size, transportId }
        CPNATFWT_BUFFER { next, size, buffer }
        IF_LUID { Value }
        CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE {
            size,
            establishSessionIndication,
            terminateSessionIndication,
            transitionActive,
            transitionDormant,
            addTransportId,
            removeTransportId,
            reachTransportId,
            sendBuffers,
        }
    }
}

/// A directory under the system temp dir, unique to this test run, removed
/// on drop (kept if the test fails, so the C sources can be looked at).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "sim-cp-abi-{tag}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create temp dir {}: {e}", dir.display()));
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include")
}

/// The C compiler as program plus leading arguments (`$CC` may be, say,
/// `ccache gcc`). Panics with a clear message if it cannot be run.
fn c_compiler() -> Vec<String> {
    let cc = std::env::var("CC")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "cc".to_string());
    let words: Vec<String> = cc.split_whitespace().map(str::to_string).collect();
    let probe = Command::new(&words[0])
        .args(&words[1..])
        .arg("--version")
        .output();
    match probe {
        Ok(out) if out.status.success() => words,
        Ok(out) => panic!(
            "the C compiler `{cc}` (from $CC, or the default `cc`) does not work: \
             `{cc} --version` exited with {}\n{}\n\
             The ABI layout test needs a working C compiler; install one (e.g. gcc).",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "no C compiler found: cannot run `{cc}` (from $CC, or the default `cc`): {e}\n\
             The ABI layout test needs a C compiler to check include/cpnatfwt.h against \
             cpsim_sim::abi; install one (e.g. `apt-get install gcc`) or point $CC at it."
        ),
    }
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what} failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Compiles `source` (written to `dir/name`) with the header on the include
/// path, adding `extra` arguments (`-c`, `-o ...`).
fn compile(dir: &Path, name: &str, source: &str, extra: &[&str]) {
    let src = dir.join(name);
    std::fs::write(&src, source).unwrap_or_else(|e| panic!("cannot write {}: {e}", src.display()));
    let cc = c_compiler();
    let out = Command::new(&cc[0])
        .args(&cc[1..])
        .args(C_FLAGS)
        .arg("-I")
        .arg(include_dir())
        .args(extra)
        .arg(&src)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?}: {e}"));
    assert!(
        out.status.success(),
        "{}\n--- source ({}) ---\n{source}",
        describe(&format!("compiling {name} with {cc:?}"), &out),
        src.display()
    );
}

fn rust_field_size(ty: &str, field: &str) -> String {
    field_size_table()
        .into_iter()
        .find(|&(t, f, _)| t == ty && f == field)
        .map(|(_, _, size)| size.to_string())
        .unwrap_or_else(|| "(not in the test's field_size_table)".to_string())
}

/// One output line per fact, in the form the C program prints it.
fn expected_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for (name, size, fields) in abi::layout_table() {
        lines.push(format!("{name} {size}"));
        for (field, offset) in fields {
            lines.push(format!("{name}.{field} {offset}"));
            lines.push(format!(
                "fieldsize {name}.{field} {}",
                rust_field_size(name, field)
            ));
        }
    }
    for ty in POINTER_TYPES {
        lines.push(format!("sizeof {ty} {}", size_of::<usize>()));
    }
    // The basic types and the Rust types that stand for them.
    let basics = [
        ("HRESULT", size_of::<abi::HRESULT>()),
        ("WCHAR", size_of::<abi::WCHAR>()),
        ("ULONG", size_of::<u32>()),
        ("USHORT", size_of::<u16>()),
        ("BYTE", size_of::<u8>()),
        ("UINT64", size_of::<u64>()),
        ("PVOID", size_of::<*mut std::ffi::c_void>()),
    ];
    for (ty, size) in basics {
        lines.push(format!("sizeof {ty} {size}"));
    }
    let consts: [(&str, i64); 9] = [
        ("S_OK", abi::S_OK.into()),
        ("S_FALSE", abi::S_FALSE.into()),
        ("E_HANDLE", abi::E_HANDLE.into()),
        ("E_POINTER", abi::E_POINTER.into()),
        ("E_INVALIDARG", abi::E_INVALIDARG.into()),
        ("E_FAIL", abi::E_FAIL.into()),
        (
            "HRESULT_FROM_WIN32(ERROR_IO_PENDING)",
            abi::E_PENDING_IO.into(),
        ),
        (
            "HRESULT_FROM_WIN32(ERROR_INVALID_STATE)",
            abi::E_INVALID_STATE.into(),
        ),
        (
            "HRESULT_FROM_WIN32(ERROR_NOT_FOUND)",
            abi::E_NOT_FOUND.into(),
        ),
    ];
    for (name, value) in consts {
        lines.push(format!("const {name} {value}"));
    }
    lines.push(format!(
        "const CPNATFWT_MAX_INTERFACE_NAME_LENGTH {}",
        abi::CPNATFWT_MAX_INTERFACE_NAME_LENGTH
    ));
    lines
}

/// The C program that prints the same facts as `expected_lines`.
fn layout_program() -> String {
    let mut c = String::new();
    c.push_str(
        "#include <stddef.h>\n\
         #include <stdio.h>\n\
         #include \"cpnatfwt.h\"\n\
         \n\
         _Static_assert(CPNATFWT_SESSION_TERMINATION_PROVIDER_REQUEST == 0, \"reason 0\");\n\
         _Static_assert(CPNATFWT_SESSION_TERMINATION_PLATFORM_SHUTDOWN == 1, \"reason 1\");\n\
         _Static_assert(CPNATFWT_SESSION_TERMINATION_PROVIDER_TIMEOUT == 2, \"reason 2\");\n\
         _Static_assert(CPNATFWT_SESSION_TERMINATION_PROVIDER_OTHER_FAILURE == 3, \"reason 3\");\n\
         _Static_assert(CPNATFWT_SESSION_TERMINATION_OTHER_COMMUNICATION_ERROR == 4, \"reason 4\");\n\
         _Static_assert(HRESULT_FROM_WIN32(ERROR_IO_PENDING) == (HRESULT)0x800703E5u, \"pending\");\n\
         _Static_assert(HRESULT_FROM_WIN32(0) == S_OK, \"win32 success\");\n\
         _Static_assert((HRESULT)-1 < 0, \"HRESULT is signed\");\n\
         \n\
         int main(void) {\n",
    );
    for (name, _, fields) in abi::layout_table() {
        writeln!(c, "    printf(\"%s %zu\\n\", \"{name}\", sizeof({name}));").unwrap();
        for (field, _) in fields {
            writeln!(
                c,
                "    printf(\"%s %zu\\n\", \"{name}.{field}\", offsetof({name}, {field}));"
            )
            .unwrap();
            writeln!(
                c,
                "    printf(\"fieldsize %s %zu\\n\", \"{name}.{field}\", sizeof((({name} *)0)->{field}));"
            )
            .unwrap();
        }
    }
    for ty in POINTER_TYPES.iter().chain(
        [
            "HRESULT", "WCHAR", "ULONG", "USHORT", "BYTE", "UINT64", "PVOID",
        ]
        .iter(),
    ) {
        writeln!(
            c,
            "    printf(\"sizeof %s %zu\\n\", \"{ty}\", sizeof({ty}));"
        )
        .unwrap();
    }
    for name in [
        "S_OK",
        "S_FALSE",
        "E_HANDLE",
        "E_POINTER",
        "E_INVALIDARG",
        "E_FAIL",
        "HRESULT_FROM_WIN32(ERROR_IO_PENDING)",
        "HRESULT_FROM_WIN32(ERROR_INVALID_STATE)",
        "HRESULT_FROM_WIN32(ERROR_NOT_FOUND)",
    ] {
        writeln!(
            c,
            "    printf(\"const %s %lld\\n\", \"{name}\", (long long)(HRESULT)({name}));"
        )
        .unwrap();
    }
    c.push_str(
        "    printf(\"const %s %lld\\n\", \"CPNATFWT_MAX_INTERFACE_NAME_LENGTH\",\n\
         \x20          (long long)CPNATFWT_MAX_INTERFACE_NAME_LENGTH);\n\
         \x20   return 0;\n\
         }\n",
    );
    c
}

#[test]
fn c_layout_matches_rust() {
    let dir = TempDir::new("layout");
    let exe = dir
        .path()
        .join(format!("layout{}", std::env::consts::EXE_SUFFIX));
    let source = layout_program();
    compile(
        dir.path(),
        "layout.c",
        &source,
        &["-o", exe.to_str().expect("temp path is UTF-8")],
    );
    let out = Command::new(&exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    assert!(
        out.status.success(),
        "{}",
        describe("the layout program", &out)
    );

    let stdout = String::from_utf8(out.stdout).expect("layout program prints UTF-8");
    let actual: Vec<String> = stdout.lines().map(str::to_string).collect();
    let expected = expected_lines();

    let actual_set: BTreeSet<&String> = actual.iter().collect();
    let expected_set: BTreeSet<&String> = expected.iter().collect();
    assert_eq!(
        actual_set.len(),
        actual.len(),
        "C printed duplicate lines:\n{stdout}"
    );
    assert_eq!(
        expected_set.len(),
        expected.len(),
        "Rust side has duplicate lines"
    );
    if actual_set != expected_set {
        let mut diff = String::new();
        for line in expected_set.difference(&actual_set) {
            writeln!(diff, "- {line}    (Rust says, C does not)").unwrap();
        }
        for line in actual_set.difference(&expected_set) {
            writeln!(diff, "+ {line}    (C says, Rust does not)").unwrap();
        }
        panic!(
            "include/cpnatfwt.h and cpsim_sim::abi disagree:\n{diff}\n--- C output ---\n{stdout}"
        );
    }
}

/// A provider written only against the header: every callback is defined
/// with the exact signature the header's typedef implies and stored into the
/// table field of that typedef type; every platform function is called
/// through a pointer of the header's PFN type initialised from the declared
/// prototype. Under `-Wall -Werror` any disagreement between a typedef, a
/// prototype and the table is a compile error.
const PROVIDER_SNIPPET: &str = r#"
#define CPSIM_PROVIDER_MODULE
#include "cpnatfwt.h"

#define UNUSED(x) (void)(x)

static VOID CALLBACK on_establish(CPNATFWT_PROVIDER_INSTANCE instance, PVOID ctx) {
    UNUSED(instance); UNUSED(ctx);
}
static VOID CALLBACK on_terminate(CPNATFWT_PROVIDER_INSTANCE instance, PVOID ctx,
                                  CPNATFWT_SESSION_TERMINATION_REASON reason) {
    UNUSED(instance); UNUSED(ctx);
    switch (reason) {
    case CPNATFWT_SESSION_TERMINATION_PROVIDER_REQUEST:
    case CPNATFWT_SESSION_TERMINATION_PLATFORM_SHUTDOWN:
    case CPNATFWT_SESSION_TERMINATION_PROVIDER_TIMEOUT:
    case CPNATFWT_SESSION_TERMINATION_PROVIDER_OTHER_FAILURE:
    case CPNATFWT_SESSION_TERMINATION_OTHER_COMMUNICATION_ERROR:
        break;
    }
}
static HRESULT CALLBACK on_active(CPNATFWT_PROVIDER_INSTANCE instance, PVOID ctx,
                                  PVOID completionContext,
                                  CPNATFWT_PLATFORM_COMPLETION_ROUTINE done) {
    UNUSED(instance); UNUSED(ctx);
    done(completionContext, S_OK);
    return HRESULT_FROM_WIN32(ERROR_IO_PENDING);
}
static HRESULT CALLBACK on_dormant(CPNATFWT_PROVIDER_INSTANCE instance, PVOID ctx,
                                   PVOID completionContext,
                                   CPNATFWT_PLATFORM_COMPLETION_ROUTINE done) {
    UNUSED(instance); UNUSED(ctx); UNUSED(completionContext); UNUSED(done);
    return S_OK;
}
static HRESULT CALLBACK on_add(CPNATFWT_PROVIDER_INSTANCE instance, PVOID ctx,
                               CPNATFWT_TRANSPORT_ID *id, PVOID completionContext,
                               CPNATFWT_PLATFORM_COMPLETION_ROUTINE done) {
    UNUSED(instance); UNUSED(ctx); UNUSED(completionContext); UNUSED(done);
    return (id->size == 4 || id->size == 16) ? S_OK : E_INVALIDARG;
}
static HRESULT CALLBACK on_remove(CPNATFWT_PROVIDER_INSTANCE instance, PVOID ctx,
                                  CPNATFWT_TRANSPORT_ID *id, PVOID completionContext,
                                  CPNATFWT_PLATFORM_COMPLETION_ROUTINE done) {
    UNUSED(instance); UNUSED(ctx); UNUSED(id); UNUSED(completionContext); UNUSED(done);
    return S_OK;
}
static HRESULT CALLBACK on_reach(CPNATFWT_PROVIDER_INSTANCE instance, PVOID ctx,
                                 CPNATFWT_TRANSPORT_ID *id, PVOID completionContext,
                                 CPNATFWT_PLATFORM_COMPLETION_ROUTINE done) {
    UNUSED(instance); UNUSED(ctx); UNUSED(id); UNUSED(completionContext); UNUSED(done);
    return E_FAIL;
}
static HRESULT CALLBACK on_send(CPNATFWT_PROVIDER_INSTANCE instance, PVOID ctx,
                                CPNATFWT_TRANSPORT_ID *local, CPNATFWT_TRANSPORT_ID *remote,
                                UINT64 endpointLuid, CPNATFWT_BUFFER *chain,
                                PVOID completionContext,
                                CPNATFWT_PLATFORM_COMPLETION_ROUTINE done) {
    ULONG total = 0;
    UNUSED(instance); UNUSED(ctx); UNUSED(local); UNUSED(remote); UNUSED(endpointLuid);
    UNUSED(completionContext); UNUSED(done);
    for (; chain != NULL; chain = chain->next) total += chain->size;
    return total > 0 ? S_OK : S_FALSE;
}
static VOID CALLBACK on_received_done(PVOID completionContext, HRESULT status) {
    UNUSED(completionContext); UNUSED(status);
}

/* Each callback, stored in a variable of the header's typedef for it. */
static const CPNATFWT_PROVIDER_ESTABLISH_SESSION_INDICATION f_establish = on_establish;
static const CPNATFWT_PROVIDER_TERMINATE_SESSION_INDICATION f_terminate = on_terminate;
static const CPNATFWT_PROVIDER_TRANSITION_ACTIVE f_active = on_active;
static const CPNATFWT_PROVIDER_TRANSITION_DORMANT f_dormant = on_dormant;
static const CPNATFWT_PROVIDER_ADD_TRANSPORT_ID f_add = on_add;
static const CPNATFWT_PROVIDER_REMOVE_TRANSPORT_ID f_remove = on_remove;
static const CPNATFWT_PROVIDER_REACH_TRANSPORT_ID f_reach = on_reach;
static const CPNATFWT_PROVIDER_SEND_BUFFERS f_send = on_send;
static const CPNATFWT_PROVIDER_COMPLETION_ROUTINE f_received_done = on_received_done;

static const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE table = {
    sizeof(CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE),
    on_establish, on_terminate, on_active, on_dormant,
    on_add, on_remove, on_reach, on_send,
};

static CPNATFWT_PROVIDER_INSTANCE the_instance;

static HRESULT run_provider(void) {
    /* The five functions, through pointers of the header's types. */
    PFN_CPNatfwtCreateProviderInstance create = CPNatfwtCreateProviderInstance;
    PFN_CPNatfwtRegisterProviderInstance reg = CPNatfwtRegisterProviderInstance;
    PFN_CPNatfwtDeregisterProviderInstance dereg = CPNatfwtDeregisterProviderInstance;
    PFN_CPNatfwtDestroyProviderInstance destroy = CPNatfwtDestroyProviderInstance;
    PFN_CPNatfwtIndicateReceivedBuffers indicate = CPNatfwtIndicateReceivedBuffers;

    CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE copy = table;
    WCHAR name[CPNATFWT_MAX_INTERFACE_NAME_LENGTH + 1] = {'c', 'p', 0};
    IF_LUID luid;
    BYTE local_bytes[4] = {10, 0, 0, 1}, remote_bytes[4] = {10, 0, 0, 2};
    BYTE payload[3] = {1, 2, 3};
    CPNATFWT_TRANSPORT_ID local = {sizeof local_bytes, local_bytes};
    CPNATFWT_TRANSPORT_ID remote = {sizeof remote_bytes, remote_bytes};
    CPNATFWT_BUFFER second = {NULL, sizeof payload, payload};
    CPNATFWT_BUFFER first = {&second, 0, NULL};
    HRESULT hr;

    copy.establishSessionIndication = f_establish;
    copy.terminateSessionIndication = f_terminate;
    copy.transitionActive = f_active;
    copy.transitionDormant = f_dormant;
    copy.addTransportId = f_add;
    copy.removeTransportId = f_remove;
    copy.reachTransportId = f_reach;
    copy.sendBuffers = f_send;

    luid.Value = 0;
    hr = create(&copy, &the_instance, &the_instance);
    if (hr != S_OK) return hr;
    hr = reg(the_instance, name, &luid, 0, NULL);
    if (hr != S_OK) { destroy(the_instance); return hr; }
    hr = indicate(the_instance, &local, &remote, &first, NULL, NULL);
    if (hr == S_OK)
        hr = indicate(the_instance, &local, &remote, &first, &first, f_received_done);
    if (hr == HRESULT_FROM_WIN32(ERROR_IO_PENDING)) hr = S_OK;
    (void)dereg(the_instance);
    destroy(the_instance);
    return hr;
}

/* The provider-module entry points, defined against their prototypes. */
HRESULT CpsimProviderStart(const char *hostName, const char *configJson) {
    UNUSED(hostName); UNUSED(configJson);
    return run_provider();
}
void CpsimProviderStop(void) {}

PFN_CpsimProviderStart module_start = CpsimProviderStart;
PFN_CpsimProviderStop module_stop = CpsimProviderStop;
"#;

#[test]
fn c_provider_snippet_compiles() {
    let dir = TempDir::new("provider");
    compile(
        dir.path(),
        "provider.c",
        PROVIDER_SNIPPET,
        &["-c", "-o", "provider.o"],
    );
    assert!(
        dir.path().join("provider.o").is_file(),
        "the compiler reported success but wrote no provider.o"
    );
}
