//! The harness's side of case runners: child processes, each in a process
//! group of its own, fed the module once and then cases one at a time,
//! reused while they stay healthy (a fresh one after any crash, exit or
//! hang, or when a module left threads running), and ended with their
//! whole group — grandchildren too — whenever one is given up. On Windows
//! a job object plays the process group's part (`KILL_ON_JOB_CLOSE`).

use super::capture::{Capture, Captured};
use super::proto::{self, CaseMsg, CheckMsg, FromChild, LoadMsg};
use super::sandbox::Isolation;
use cpsim_certify::scenario::Scenario;
use cpsim_cmod::ModuleImage;
use cpsim_sim::{ClockMode, Outcome};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The hidden subcommand of the runner.
pub const RUN_CASE: &str = "__run-case";

/// What became of a case (or load check) sent to a runner.
#[derive(Debug)]
pub enum End {
    /// It ran to its end.
    Done {
        outcome: Outcome,
        leftover_threads: usize,
        foreign_calls: u64,
        resident_copies: usize,
        start_failure: Option<String>,
    },
    /// A load check's answer.
    Checked(Option<String>),
    /// The runner said it could not run it.
    Failed(String),
    /// The runner ended without finishing it (crash, exit, hang).
    Lost(Loss),
}

/// How a runner was lost, with what it managed to say first.
#[derive(Debug)]
pub struct Loss {
    /// How the process ended (None: killed by the harness at its limit).
    pub status: Option<ExitStatus>,
    /// Its own last words: a fatal signal, an exit, a hang.
    pub said: Option<FromChild>,
    /// Its output while it ran the case, bounded.
    pub output: Captured,
    /// The harness's limit, when it was the harness that ended it.
    pub limit: Option<Duration>,
    /// Why the harness ended it, when its channel to cpsim broke (a frame
    /// that could not be read or written): the end it then shows is the
    /// harness's kill, not the module's doing.
    pub broke: Option<String>,
}

enum Msg {
    Frame(FromChild),
    Bad(String),
    Eof,
}

/// One runner process.
struct Worker {
    child: Child,
    #[cfg(unix)]
    pgid: i32,
    /// The job holding the runner and all it starts (Windows).
    #[cfg(windows)]
    job: super::win::Job,
    stdin: Option<ChildStdin>,
    frames: Receiver<Msg>,
    output: Capture,
    hello: Option<(Isolation, Option<String>)>,
    cases: u32,
    dead: bool,
}

impl Worker {
    fn spawn(
        runner: &Path,
        image: &ModuleImage,
        isolation: Option<&str>,
    ) -> Result<Worker, String> {
        let mut cmd = Command::new(runner);
        if let Some(mode) = isolation {
            cmd.env(super::sandbox::ENV, mode);
        }
        cmd.arg(RUN_CASE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the case runner {}: {e}", runner.display()))?;
        #[cfg(unix)]
        let pgid = child.id() as i32;
        // Before the module is sent: until then the runner starts nothing.
        #[cfg(windows)]
        let job = match super::win::Job::adopt(&child) {
            Ok(j) => j,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("cannot put the case runner in a job object: {e}"));
            }
        };
        let output = Capture::spawn(child.stderr.take().expect("piped"));
        let mut stdout = child.stdout.take().expect("piped");
        let (tx, frames) = mpsc::channel();
        let _ = std::thread::Builder::new()
            .name("cpsim-runner-reader".into())
            .spawn(move || loop {
                let msg = match proto::read_frame(&mut stdout) {
                    Ok(Some((k, p))) => match proto::decode(k, &p) {
                        Ok(m) => Msg::Frame(m),
                        Err(e) => Msg::Bad(e),
                    },
                    Ok(None) | Err(_) => Msg::Eof,
                };
                let eof = matches!(msg, Msg::Eof);
                if tx.send(msg).is_err() || eof {
                    break;
                }
            });
        let mut w = Worker {
            child,
            #[cfg(unix)]
            pgid,
            #[cfg(windows)]
            job,
            stdin: None,
            frames,
            output,
            hello: None,
            cases: 0,
            dead: false,
        };
        w.stdin = w.child.stdin.take();
        let load = proto::load_payload(
            &LoadMsg {
                path: image.path().to_path_buf(),
            },
            image.bytes(),
        );
        w.send(proto::LOAD, &load)?;
        Ok(w)
    }

    fn send(&mut self, kind: u8, payload: &[u8]) -> Result<(), String> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err("the runner's input is closed".into());
        };
        proto::write_frame(stdin, kind, payload).map_err(|e| format!("writing to the runner: {e}"))
    }

    /// Whether it ended by itself since it was last used.
    fn ended(&mut self) -> bool {
        loop {
            match self.frames.try_recv() {
                Ok(Msg::Frame(FromChild::Hello { isolation, note })) => {
                    self.hello = Some((isolation, note))
                }
                Ok(Msg::Eof) | Err(mpsc::TryRecvError::Disconnected) => return true,
                Ok(_) => return true,
                Err(mpsc::TryRecvError::Empty) => return false,
            }
        }
    }

    /// Sends one request and waits for its answer, at most `limit`.
    fn request(&mut self, kind: u8, payload: &[u8], limit: Duration) -> End {
        if let Err(e) = self.send(kind, payload) {
            return self.lose(None, None, Some(e));
        }
        let until = Instant::now() + limit;
        let mut said = None;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.frames.recv_timeout(left) {
                Ok(Msg::Frame(FromChild::Hello { isolation, note })) => {
                    self.hello = Some((isolation, note))
                }
                Ok(Msg::Frame(FromChild::Done {
                    outcome,
                    leftover_threads,
                    foreign_calls,
                    resident_copies,
                    start_failure,
                })) => {
                    self.output.take();
                    self.cases += 1;
                    return End::Done {
                        outcome,
                        leftover_threads,
                        foreign_calls,
                        resident_copies,
                        start_failure,
                    };
                }
                Ok(Msg::Frame(FromChild::Checked { error })) => {
                    self.output.take();
                    return End::Checked(error);
                }
                Ok(Msg::Frame(FromChild::Failed { message })) => {
                    self.output.take();
                    return End::Failed(message);
                }
                // Last words: the process is ending; wait for it to end.
                Ok(Msg::Frame(m)) => said = Some(m),
                Ok(Msg::Bad(e)) => return self.lose(said, None, Some(e)),
                Ok(Msg::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    // A process that ends closes its pipes as it goes; one
                    // still running closed them itself (module code did).
                    let why = (said.is_none() && !self.exits_soon())
                        .then(|| "its output to cpsim was closed while it still ran".to_string());
                    return self.lose(said, None, why);
                }
                Err(RecvTimeoutError::Timeout) => return self.lose(said, Some(limit), None),
            }
        }
    }

    /// Whether the runner ends by itself within 200 ms (it is not reaped:
    /// its process group stays its own until [`Self::kill`]).
    fn exits_soon(&mut self) -> bool {
        let until = Instant::now() + Duration::from_millis(200);
        loop {
            #[cfg(unix)]
            {
                // SAFETY: waitid on our own child with WNOWAIT, which leaves
                // it unreaped; `info` is a plain struct it fills.
                let ended = unsafe {
                    let mut info: libc::siginfo_t = std::mem::zeroed();
                    libc::waitid(
                        libc::P_PID,
                        self.child.id() as libc::id_t,
                        &mut info,
                        libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                    ) == 0
                        && info.si_pid() != 0
                };
                if ended {
                    return true;
                }
            }
            #[cfg(not(unix))]
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Ends the runner's whole process group and reports how it ended.
    fn lose(
        &mut self,
        said: Option<FromChild>,
        limit: Option<Duration>,
        why: Option<String>,
    ) -> End {
        self.kill();
        let status = self.child.wait().ok();
        let output = self.output.take();
        End::Lost(Loss {
            status: if limit.is_some() { None } else { status },
            said,
            output,
            limit,
            broke: why,
        })
    }

    /// Kills the process group (the runner is not reaped yet, so its
    /// group id cannot have been reused).
    fn kill(&mut self) {
        if self.dead {
            return;
        }
        self.dead = true;
        self.stdin = None;
        #[cfg(unix)]
        // SAFETY: a signal to the process group this runner leads.
        unsafe {
            libc::killpg(self.pgid, libc::SIGKILL);
        }
        #[cfg(windows)]
        self.job.kill();
        #[cfg(not(any(unix, windows)))]
        let _ = self.child.kill();
    }

    /// Ends it (its group too) and reaps it.
    fn retire(mut self) {
        self.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if !self.dead {
            self.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runners for one module.
pub struct Pool {
    runner: PathBuf,
    image: Arc<ModuleImage>,
    idle: Mutex<Vec<Worker>>,
    /// Cases one runner may run before a fresh one takes over (1: a
    /// runner per case).
    per_runner: u32,
    /// The isolation asked of runners (`sandbox::ENV`), if not the default.
    isolation: Option<String>,
}

/// A real-time runner is replaced after this many cases (its module copies
/// stay mapped: their threads might still run).
pub const REAL_TIME_CASES_PER_RUNNER: u32 = 64;
/// A runner keeping this many module copies loaded for good is replaced
/// (each holds a mapping and a descriptor).
pub const MAX_RESIDENT_COPIES: usize = 256;
/// A virtual-time runner (copies are unloaded after each case).
pub const VIRTUAL_TIME_CASES_PER_RUNNER: u32 = 4096;

impl Pool {
    pub fn new(
        runner: PathBuf,
        image: Arc<ModuleImage>,
        per_runner: u32,
        isolation: Option<String>,
    ) -> Pool {
        Pool {
            runner,
            image,
            idle: Mutex::new(Vec::new()),
            per_runner: per_runner.max(1),
            isolation,
        }
    }

    /// The runner executable.
    pub fn runner(&self) -> &Path {
        &self.runner
    }

    fn take(&self) -> Result<Worker, String> {
        loop {
            let w = self.idle.lock().pop();
            match w {
                Some(mut w) => {
                    if !w.ended() {
                        return Ok(w);
                    }
                    w.retire();
                }
                None => return Worker::spawn(&self.runner, &self.image, self.isolation.as_deref()),
            }
        }
    }

    fn put(&self, w: Worker, reuse: bool) {
        if reuse && w.cases < self.per_runner {
            self.idle.lock().push(w);
        } else {
            w.retire();
        }
    }

    /// Runs one case; `limit` is the harness's hard limit (the runner's own
    /// deadline, in the message, comes first).
    pub fn run_case(
        &self,
        s: &Scenario,
        clock: ClockMode,
        deadline: Duration,
        limit: Duration,
    ) -> End {
        let msg = CaseMsg {
            scenario: s.clone(),
            clock,
            deadline_ms: deadline.as_millis() as u64,
        };
        let payload = serde_json::to_vec(&msg).expect("a case serialises");
        self.request(proto::CASE, &payload, limit)
    }

    /// Loads one copy of the module in a runner (its initialisers run there).
    pub fn check(&self, deadline: Duration, limit: Duration) -> End {
        let payload = serde_json::to_vec(&CheckMsg {
            deadline_ms: deadline.as_millis() as u64,
        })
        .expect("a check serialises");
        self.request(proto::CHECK, &payload, limit)
    }

    fn request(&self, kind: u8, payload: &[u8], limit: Duration) -> End {
        let mut w = match self.take() {
            Ok(w) => w,
            Err(e) => return End::Failed(e),
        };
        let end = w.request(kind, payload, limit);
        let healthy = match &end {
            End::Done {
                leftover_threads,
                resident_copies,
                ..
            } => *leftover_threads == 0 && *resident_copies < MAX_RESIDENT_COPIES,
            _ => false,
        };
        self.put(w, healthy);
        end
    }

    /// How a runner of this pool is isolated: asks a fresh one.
    pub fn probe(&self, limit: Duration) -> Result<(Isolation, Option<String>), String> {
        let mut w = self.take()?;
        let until = Instant::now() + limit;
        while w.hello.is_none() {
            let left = until.saturating_duration_since(Instant::now());
            match w.frames.recv_timeout(left) {
                Ok(Msg::Frame(FromChild::Hello { isolation, note })) => {
                    w.hello = Some((isolation, note))
                }
                _ => {
                    w.retire();
                    return Err(format!(
                        "the case runner {} did not start",
                        self.runner.display()
                    ));
                }
            }
        }
        let hello = w.hello.clone().expect("just set");
        self.put(w, true);
        Ok(hello)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for w in self.idle.get_mut().drain(..) {
            w.retire();
        }
    }
}
