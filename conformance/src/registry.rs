//! Providers by name: what a scenario file's `"provider": {"name": NAME}`
//! (or the older spelling `{"builtin": NAME}`) and `cpsim certify --provider
//! NAME` refer to.
//!
//! A [`Registry`] is the set of providers one `cpsim` binary knows: this
//! repository's demo providers for the stock binary, an author's own for
//! the binary their crate builds with `cpsim::main_with`. It also says how
//! to run scenarios whose provider is a C module ([`ModuleRunner`]); the
//! library itself cannot load native code, the CLI crate plugs that in.

use crate::certify::Subject;
use crate::scenario::{self, LoadError, ProviderRef, Scenario, ScenarioRun};
use cpsim_sim::{ClockMode, ProviderFactory, RuleId};
use std::path::Path;
use std::sync::Arc;

/// Whether a provider is meant to pass, or to break one rule.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Meant to pass every rule.
    Correct,
    /// Deliberately breaks this rule (a kill-matrix row).
    Broken(RuleId),
    /// Breaks this rule, but only under a rare condition (a row of
    /// `cpsim kill-matrix --subtle`).
    Subtle(RuleId),
}

impl Kind {
    /// The rule a broken or subtle provider breaks.
    pub fn target(self) -> Option<RuleId> {
        match self {
            Kind::Correct => None,
            Kind::Broken(r) | Kind::Subtle(r) => Some(r),
        }
    }
}

type Make = Arc<dyn Fn() -> Arc<dyn ProviderFactory> + Send + Sync>;

/// One named provider: how to make a fresh factory, and what it is.
#[derive(Clone)]
pub struct Entry {
    name: String,
    description: String,
    kind: Kind,
    clock: ClockMode,
    make: Make,
}

impl Entry {
    /// A correct provider on the virtual clock; `make` gives a fresh factory
    /// for each run (one factory serves one simulated world at a time).
    pub fn new(
        name: impl Into<String>,
        make: impl Fn() -> Arc<dyn ProviderFactory> + Send + Sync + 'static,
    ) -> Entry {
        Entry {
            name: name.into(),
            description: String::new(),
            kind: Kind::Correct,
            clock: ClockMode::Virtual,
            make: Arc::new(make),
        }
    }
    /// A correct provider, named as its factory names
    /// itself ([`ProviderFactory::name`]): the name `certify` writes into
    /// the scenario files it saves, so they replay through this registry.
    ///
    /// A factory that is not [`ProviderFactory::deterministic`] (it runs
    /// threads of its own) is marked [`Entry::real_time`].
    pub fn of(make: impl Fn() -> Arc<dyn ProviderFactory> + Send + Sync + 'static) -> Entry {
        let factory = make();
        let e = Entry::new(factory.name(), make);
        if factory.deterministic() {
            e
        } else {
            e.real_time()
        }
    }
    /// With a one-line description (`cpsim providers`).
    pub fn describe(mut self, text: impl Into<String>) -> Entry {
        self.description = text.into();
        self
    }
    /// Marks it as deliberately breaking `rule`: `cpsim kill-matrix`
    /// certifies it and expects that rule to fire.
    pub fn broken(mut self, rule: RuleId) -> Entry {
        self.kind = Kind::Broken(rule);
        self
    }
    /// Marks it as breaking `rule` only under a rare condition: `cpsim
    /// kill-matrix --subtle` certifies it and measures how fast it is caught.
    pub fn subtle(mut self, rule: RuleId) -> Entry {
        self.kind = Kind::Subtle(rule);
        self
    }
    /// It runs its own threads: run it on the real-time clock.
    pub fn real_time(mut self) -> Entry {
        self.clock = ClockMode::RealTime;
        self
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn description(&self) -> &str {
        &self.description
    }
    pub fn kind(&self) -> Kind {
        self.kind
    }
    pub fn clock(&self) -> ClockMode {
        self.clock
    }
    /// A fresh factory.
    pub fn factory(&self) -> Arc<dyn ProviderFactory> {
        (self.make)()
    }
    /// This provider as a certification subject.
    pub fn subject(&self) -> Subject {
        Subject {
            name: self.name.clone(),
            clock: self.clock,
            make: self.make.clone(),
            external: None,
        }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Runs scenarios whose provider is a C module (`"provider": {"library": …}`):
/// the `cpsim` crate's module support implements it (in a child process).
pub trait ModuleRunner: Send + Sync {
    /// Runs `s` (its provider is a [`ProviderRef::Library`]) and checks its
    /// expectations; an error says why it could not run at all.
    fn run(&self, s: &Scenario) -> Result<ScenarioRun, String>;
}

/// The providers a `cpsim` binary (or a test) knows, by name.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Vec<Entry>,
    modules: Option<Arc<dyn ModuleRunner>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }
    /// Adds a provider (names are unique: a second entry of the same name
    /// replaces the first).
    pub fn with(mut self, entry: Entry) -> Registry {
        self.add(entry);
        self
    }
    /// Adds a provider in place (see [`Registry::with`]).
    pub fn add(&mut self, entry: Entry) {
        match self.entries.iter_mut().find(|e| e.name == entry.name) {
            Some(e) => *e = entry,
            None => self.entries.push(entry),
        }
    }
    /// Every provider of `other` added to this one.
    pub fn merged(mut self, other: Registry) -> Registry {
        for e in other.entries {
            self.add(e);
        }
        if self.modules.is_none() {
            self.modules = other.modules;
        }
        self
    }
    /// How scenarios naming a C module are run.
    pub fn set_module_runner(&mut self, runner: Arc<dyn ModuleRunner>) {
        self.modules = Some(runner);
    }
    /// Whether C modules can be run.
    pub fn runs_modules(&self) -> bool {
        self.modules.is_some()
    }
    /// Every provider, in the order added.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
    /// The provider named `name`.
    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
    /// Whether a provider of that name is known.
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }
    /// The named provider as a certification subject.
    pub fn subject(&self, name: &str) -> Option<Subject> {
        self.find(name).map(Entry::subject)
    }
    /// The names, comma-separated (for error messages).
    pub fn names(&self) -> String {
        let v: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
        v.join(", ")
    }
    /// Loads and checks a scenario file; its provider must be known here.
    pub fn load(&self, path: &Path) -> Result<Scenario, LoadError> {
        scenario::load_with(path, &|name| self.contains(name))
    }
    /// Runs a scenario (a provider of this registry, or a C module when a
    /// module runner is set) and checks its expectations.
    pub fn run(&self, s: &Scenario) -> Result<ScenarioRun, String> {
        match &s.provider {
            ProviderRef::Name(name) | ProviderRef::Builtin(name) => {
                let e = self.find(name).ok_or_else(|| self.unknown(name))?;
                let factory = e.factory();
                Ok(scenario::run(s, factory, e.clock))
            }
            ProviderRef::Library(path) => match &self.modules {
                Some(m) => m.run(s),
                None => Err(format!(
                    "{}: this build cannot run C provider modules (the `cpsim` binary can)",
                    path.display()
                )),
            },
        }
    }
    /// The error for a provider name this registry does not know.
    pub fn unknown(&self, name: &str) -> String {
        if self.entries.is_empty() {
            format!("unknown provider `{name}`: no provider is registered")
        } else {
            format!(
                "unknown provider `{name}` (known here: {}; `cpsim providers` lists them)",
                self.names()
            )
        }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("entries", &self.entries)
            .field("modules", &self.modules.is_some())
            .finish()
    }
}
