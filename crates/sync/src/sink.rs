//! The engine's [`PageSink`]: hands each page to a writer task that applies it to the store in
//! its own transaction, so the connector fetches the next page while the last one is written.
//!
//! The queue between them is short ([`QUEUE`] pages), so memory stays bounded whatever the
//! tenant's size, and a slow store slows the listing instead of piling pages up.

use std::sync::Arc;
use std::time::Duration;

use ctxsync_core::{OrgId, Run, RunCounts};
use ctxsync_sources::{Page, PageSink, SinkError};
use ctxsync_store::{PageWrite, Store};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often a running run's counts are written back.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Pages waiting to be written; enough to cover a slow commit, few enough to keep memory flat.
const QUEUE: usize = 4;

/// Told about every applied page: the run's counts so far (for progress bars).
pub type Progress = Arc<dyn Fn(&RunCounts) + Send + Sync>;

pub(crate) struct StoreSink {
    pages: Option<mpsc::Sender<Page>>,
    writer: JoinHandle<Result<Run, (Run, SinkError)>>,
    cancel: CancellationToken,
}

impl StoreSink {
    pub fn new(
        store: Arc<dyn Store>,
        run: Run,
        org: OrgId,
        cancel: CancellationToken,
        progress: Option<Progress>,
    ) -> Self {
        let (pages, queue) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(write_pages(store, run, org, queue, progress));
        StoreSink { pages: Some(pages), writer, cancel }
    }

    /// Waits for the queued pages to be written and returns the run with its counts, and the
    /// writer's error if one stopped it.
    pub async fn finish(mut self) -> (Run, Option<SinkError>) {
        drop(self.pages.take());
        match (&mut self.writer).await {
            Ok(Ok(run)) => (run, None),
            Ok(Err((run, e))) => (run, Some(e)),
            Err(e) => panic!("the page writer panicked: {e}"),
        }
    }
}

impl Drop for StoreSink {
    /// A run abandoned mid-listing (its task aborted) must not leave a writer behind.
    fn drop(&mut self) {
        if self.pages.is_some() {
            self.writer.abort();
        }
    }
}

#[async_trait::async_trait]
impl PageSink for StoreSink {
    async fn accept(&mut self, page: Page) -> Result<(), SinkError> {
        if self.cancel.is_cancelled() {
            return Err(SinkError("the run was cancelled".into()));
        }
        let pages = self.pages.as_ref().expect("pages are accepted only before finish");
        // A closed queue means the writer stopped on an error; `finish` reports it.
        pages.send(page).await.map_err(|_| SinkError("the store stopped taking pages".into()))
    }
}

async fn write_pages(
    store: Arc<dyn Store>,
    mut run: Run,
    org: OrgId,
    mut queue: mpsc::Receiver<Page>,
    progress: Option<Progress>,
) -> Result<Run, (Run, SinkError)> {
    let mut last_saved = Instant::now();
    while let Some(page) = queue.recv().await {
        let write =
            PageWrite { records: &page.records, memberships: &page.memberships, removals: &page.removals };
        let mut counts = match store.apply_page(&run, org, write).await {
            Ok(counts) => counts,
            Err(e) => return Err((run, SinkError(format!("could not store a page: {e}")))),
        };
        counts.retries = u64::from(page.retries);
        run.counts.add(&counts);
        if let Some(progress) = &progress {
            progress(&run.counts);
        }
        if last_saved.elapsed() >= PROGRESS_EVERY {
            last_saved = Instant::now();
            if let Err(e) = store.save_progress(&run).await {
                return Err((run, SinkError(format!("could not save progress: {e}"))));
            }
        }
    }
    Ok(run)
}
