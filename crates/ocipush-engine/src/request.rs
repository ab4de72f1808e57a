//! A push as one request: where to, from which sources, with which options and reporter —
//! the builder a program uses instead of calling `plan` and `push` itself.

use std::sync::Arc;

use ocipush_source::Source;

use crate::dry_run::{dry_run, ImagePlan};
use crate::error::PushError;
use crate::naming::Destination;
use crate::plan::{plan, Plan};
use crate::push::{push, PushOptions};
use crate::report::PushReport;
use crate::reporter::{Reporter, SilentReporter};

/// A push request, built up and then run (or dry-run).
///
/// ```
/// use ocipush_engine::{Destination, Push, PushOptions};
/// use ocipush_registry::RegistryTarget;
///
/// let target = RegistryTarget::parse("localhost:5000/team").unwrap();
/// let request = Push::to(Destination::Registry(target))
///     .tag("dev")
///     .options(PushOptions::default().with_jobs(8));
/// assert_eq!(request.sources().len(), 0);
/// ```
#[must_use = "a push request does nothing until it is run"]
pub struct Push {
    destination: Destination,
    sources: Vec<Arc<Source>>,
    tags: Vec<String>,
    options: PushOptions,
    reporter: Arc<dyn Reporter>,
}

impl Push {
    /// A request to push into `destination`: one reference for one image, or a registry
    /// (and namespace) where each image goes under its own name.
    pub fn to(destination: Destination) -> Push {
        Push {
            destination,
            sources: Vec::new(),
            tags: Vec::new(),
            options: PushOptions::default(),
            reporter: Arc::new(SilentReporter),
        }
    }

    /// Adds an opened source (`ocipush_source::open_source`).
    pub fn source(mut self, source: Source) -> Push {
        self.sources.push(Arc::new(source));
        self
    }

    /// Adds opened sources.
    pub fn sources_from(mut self, sources: impl IntoIterator<Item = Source>) -> Push {
        self.sources.extend(sources.into_iter().map(Arc::new));
        self
    }

    /// Pushes under `tag` (repeatable) instead of the tags the sources carry.
    pub fn tag(mut self, tag: impl Into<String>) -> Push {
        self.tags.push(tag.into());
        self
    }

    /// The run's settings.
    pub fn options(mut self, options: PushOptions) -> Push {
        self.options = options;
        self
    }

    /// Who hears of progress (nobody by default).
    pub fn reporter(mut self, reporter: Arc<dyn Reporter>) -> Push {
        self.reporter = reporter;
        self
    }

    /// The sources added so far.
    pub fn sources(&self) -> &[Arc<Source>] {
        &self.sources
    }

    /// Pushes: the report tells per image what happened. An error here means nothing was
    /// sent (the request itself is wrong: conflicting destinations, a bad name).
    pub async fn run(self) -> Result<PushReport, PushError> {
        let planned = self.plan()?;
        Ok(push(planned, &self.options, self.reporter).await)
    }

    /// What `run` would do, blob by blob, found out without writing anything.
    pub async fn dry_run(self) -> Result<Vec<ImagePlan>, PushError> {
        let planned = self.plan()?;
        Ok(dry_run(planned, &self.options).await)
    }

    /// The plan of what it would push.
    pub fn plan(&self) -> Result<Plan, PushError> {
        plan(
            &self.sources,
            &self.destination,
            &self.tags,
            &self.options.plan_settings(),
        )
    }
}
