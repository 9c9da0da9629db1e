//! The engine's [`PageSink`]: applies each page to the store in its own transaction and keeps
//! the run's counts, saving them now and then so the run's progress is visible on the API.

use std::sync::Arc;
use std::time::Duration;

use ctxsync_core::{OrgId, Run, RunCounts};
use ctxsync_sources::{Page, PageSink, SinkError};
use ctxsync_store::{PageWrite, Store};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often a running run's counts are written back.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Told about every applied page: the run's counts so far (for progress bars).
pub type Progress = Arc<dyn Fn(&RunCounts) + Send + Sync>;

pub(crate) struct StoreSink {
    pub store: Arc<dyn Store>,
    pub run: Run,
    pub org: OrgId,
    pub cancel: CancellationToken,
    pub progress: Option<Progress>,
    last_saved: Instant,
}

impl StoreSink {
    pub fn new(
        store: Arc<dyn Store>,
        run: Run,
        org: OrgId,
        cancel: CancellationToken,
        progress: Option<Progress>,
    ) -> Self {
        StoreSink { store, run, org, cancel, progress, last_saved: Instant::now() }
    }
}

#[async_trait::async_trait]
impl PageSink for StoreSink {
    async fn accept(&mut self, page: Page) -> Result<(), SinkError> {
        if self.cancel.is_cancelled() {
            return Err(SinkError("the run was cancelled".into()));
        }
        let write =
            PageWrite { records: &page.records, memberships: &page.memberships, removals: &page.removals };
        let mut counts = self
            .store
            .apply_page(&self.run, self.org, write)
            .await
            .map_err(|e| SinkError(format!("could not store a page: {e}")))?;
        counts.retries = u64::from(page.retries);
        self.run.counts.add(&counts);
        if let Some(progress) = &self.progress {
            progress(&self.run.counts);
        }
        if self.last_saved.elapsed() >= PROGRESS_EVERY {
            self.last_saved = Instant::now();
            self.store
                .save_progress(&self.run)
                .await
                .map_err(|e| SinkError(format!("could not save progress: {e}")))?;
        }
        Ok(())
    }
}
