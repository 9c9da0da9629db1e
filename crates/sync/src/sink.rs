//! The engine's [`PageSink`]: hands each page to a writer task that applies it to the store,
//! so the connector fetches the next page while the last one is written.
//!
//! The queue between them is bounded by the size of its pages ([`QUEUE_WEIGHT`]), so memory
//! stays flat whatever the tenant's size, and a slow store slows the listing instead of piling
//! pages up. The pages that queued up while the writer was busy, or arrive while the batch
//! lingers (see [`Lingers`]), are written together in one transaction (up to [`BATCH_WEIGHT`]):
//! each page is still applied whole or not at all, and one commit costs much less than dozens.
//! Between the two, a preparer task serializes and hashes each page's entities while the writer
//! runs the previous batch's SQL, so neither the listing nor the writer waits for that work.
//!
//! The [`Mark`]s pages carry are merged into the run's [`Checkpoint`], which is written in the
//! same transaction as the pages it covers: a run stopped at any point can be resumed from what
//! was stored, never from a page that was lost.

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use ctxsync_core::{Expected, MEMBERSHIP, Membership, OrgId, Removal, Run, RunCounts, RunKind};
use ctxsync_sources::{Checkpoint, Mark, Page, PageSink, SinkError};
use ctxsync_store::{Checkpointed, PageWrite, PreparedEntities, Store};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often a running run's counts are written back.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// A page weighs its memberships and removals plus [`RECORD_WEIGHT`] per record: in memory a
/// record (a whole source object, parsed, and its normalized entity) takes about 9 KB, a
/// membership or a removal a few ids, about 150 bytes. So a weight unit is about 150 bytes.
const RECORD_WEIGHT: usize = 60;

/// The most a transaction writes: 4,000 users (some 12 MB once prepared), or 240,000 memberships.
/// Large transactions matter on a first sync: each commit writes every index page its rows
/// touched, and a user's identifiers land all over the identifier index, so fewer commits write
/// far less. Peak RSS at 100k users grows with it (about 85 MB at half this, 100 MB at this).
const BATCH_WEIGHT: usize = 240_000;

/// The most the queue and the batch being written hold together, so the connector can fill the
/// next batch while the last one is written.
const QUEUE_WEIGHT: usize = 2 * BATCH_WEIGHT;

/// How long a run's first batch waits for more pages before it is written: its first pages are
/// in the store at once.
const FIRST_LINGER: Duration = Duration::from_millis(50);

/// The longest a batch waits for more pages. A source's replies come tens or hundreds of
/// milliseconds apart, so a long run's commits hold seconds of pages: with replies 50 ms late,
/// lingering up to 2 s instead of 50 ms cut SQLite's CPU in a 100k-user sync from 4.1 s to 3.0 s.
const LINGER: Duration = Duration::from_secs(2);

/// A batch this heavy waits for no more pages (it still takes those already queued). Pages that
/// come fast fill it within milliseconds, and lingering on to [`BATCH_WEIGHT`] would only hold
/// more of them in memory at once (peak RSS rose from 85 MB to 91–103 MB at 100k users), for no
/// fewer commits than the queue already brings.
const LINGER_WEIGHT: usize = BATCH_WEIGHT / 4;

/// How long each batch of a run lingers: [`FIRST_LINGER`], doubling with every batch up to
/// [`LINGER`]; not at all in an incremental run.
struct Lingers(Duration);

impl Lingers {
    /// An incremental run's batches take only the pages already queued: such a run brings few
    /// pages, and is there so that what changed reaches the store at once. Lingering held its
    /// changed users until the last of them came (a sixth of a 1% incremental run's time).
    fn for_run(kind: RunKind) -> Self {
        match kind {
            RunKind::Full => Lingers(FIRST_LINGER),
            RunKind::Incremental => Lingers(Duration::ZERO),
        }
    }

    fn next(&mut self) -> Duration {
        let this = self.0;
        self.0 = (this * 2).min(LINGER);
        this
    }
}

/// Told about every applied page: the run's counts so far, and the totals the source announced
/// so far by kind (for progress bars).
pub type Progress = Arc<dyn Fn(&RunCounts, &Expected) + Send + Sync>;

/// A page on its way to the store, holding its share of [`QUEUE_WEIGHT`] until it is written.
struct Queued<P> {
    page: P,
    _room: OwnedSemaphorePermit,
}

/// A page with its entities ready to be written.
#[derive(Default)]
struct Prepared {
    entities: PreparedEntities,
    memberships: Vec<Membership>,
    whole_groups: Vec<String>,
    removals: Vec<Removal>,
    retries: u32,
    /// The marks of the pages, in order, each with what its page fetched.
    marks: Vec<(Mark, RunCounts)>,
}

impl Prepared {
    fn weight(&self) -> usize {
        weight(self.entities.len(), self.memberships.len(), self.removals.len())
    }
}

fn weight(records: usize, memberships: usize, removals: usize) -> usize {
    records * RECORD_WEIGHT + memberships + removals
}

pub(crate) struct StoreSink {
    pages: Option<mpsc::UnboundedSender<Queued<Page>>>,
    room: Arc<Semaphore>,
    writer: JoinHandle<Result<Run, (Run, SinkError)>>,
    cancel: CancellationToken,
    /// What the source announced, read by the writer when it reports progress.
    announced: Arc<std::sync::Mutex<Expected>>,
}

impl StoreSink {
    /// `resumed` is the checkpoint the run goes on from, when it resumes an earlier one.
    pub fn new(
        store: Arc<dyn Store>,
        run: Run,
        org: OrgId,
        resumed: Checkpoint,
        cancel: CancellationToken,
        progress: Option<Progress>,
    ) -> Self {
        let (pages, accepted) = mpsc::unbounded_channel();
        let (prepared, queue) = mpsc::unbounded_channel();
        tokio::spawn(prepare_pages(accepted, prepared));
        let announced = Arc::new(std::sync::Mutex::new(Expected::new()));
        let progress = progress.map(|p| (p, announced.clone()));
        let writer = tokio::spawn(write_pages(store, run, org, resumed, queue, progress));
        let room = Arc::new(Semaphore::new(QUEUE_WEIGHT));
        StoreSink { pages: Some(pages), room, writer, cancel, announced }
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
        let stopped = || SinkError("the store stopped taking pages".into());
        // A page heavier than the whole queue waits for the queue to empty.
        let weight = weight(page.records.len(), page.memberships.len(), page.removals.len())
            .clamp(1, QUEUE_WEIGHT) as u32;
        let room = self.room.clone().acquire_many_owned(weight).await.map_err(|_| stopped())?;
        let pages = self.pages.as_ref().expect("pages are accepted only before finish");
        // A closed queue means the writer stopped on an error; `finish` reports it.
        pages.send(Queued { page, _room: room }).map_err(|_| stopped())
    }

    fn announce(&mut self, kind: &str, more: u64) {
        *self.announced.lock().expect("announcements lock").entry(kind.to_owned()).or_default() += more;
    }
}

/// Whole pages to write in one transaction, in the order they came.
#[derive(Default)]
struct Batch {
    merged: Prepared,
    pages: u64,
    /// Released once the batch is written.
    room: Vec<OwnedSemaphorePermit>,
}

impl Batch {
    fn add(&mut self, Queued { page, _room }: Queued<Prepared>) {
        self.room.push(_room);
        let merged = &mut self.merged;
        merged.entities.extend(page.entities);
        merged.memberships.extend(page.memberships);
        merged.whole_groups.extend(page.whole_groups);
        merged.removals.extend(page.removals);
        merged.retries += page.retries;
        merged.marks.extend(page.marks);
        self.pages += 1;
    }

    fn full(&self) -> bool {
        self.merged.weight() >= BATCH_WEIGHT
    }

    /// The next batch: waits for one page, then takes the pages that follow until the batch is
    /// full, the queue ends, or `linger` has passed (or `due` has come), waiting for more only
    /// while the batch is under [`LINGER_WEIGHT`]. Lingering matters when pages arrive faster
    /// than one at a time but slower than the writer: taking only what is queued would commit a
    /// handful of small pages at a time, and every commit writes back the index pages it touched.
    async fn next(
        queue: &mut mpsc::UnboundedReceiver<Queued<Prepared>>,
        linger: Duration,
        due: Instant,
    ) -> Option<Batch> {
        let mut batch = Batch::default();
        batch.add(queue.recv().await?);
        let deadline = (Instant::now() + linger).min(due);
        while !batch.full() {
            let page = if batch.merged.weight() < LINGER_WEIGHT {
                tokio::time::timeout_at(deadline, queue.recv()).await.ok().flatten()
            } else {
                queue.try_recv().ok()
            };
            match page {
                Some(page) => batch.add(page),
                None => break,
            }
        }
        Some(batch)
    }
}

/// Prepares accepted pages in order; ends when the sink is finished or the writer stopped.
async fn prepare_pages(
    mut accepted: mpsc::UnboundedReceiver<Queued<Page>>,
    prepared: mpsc::UnboundedSender<Queued<Prepared>>,
) {
    while let Some(Queued { page, _room }) = accepted.recv().await {
        let entities = PreparedEntities::new(page.records);
        let marks = page
            .mark
            .map(|mark| {
                let mut fetched = entities.fetched().clone();
                fetched.entry(MEMBERSHIP).fetched += page.memberships.len() as u64;
                (mark, fetched)
            })
            .into_iter()
            .collect();
        let page = Prepared {
            entities,
            memberships: page.memberships,
            whole_groups: page.whole_groups,
            removals: page.removals,
            retries: page.retries,
            marks,
        };
        if prepared.send(Queued { page, _room }).is_err() {
            return;
        }
    }
}

async fn write_pages(
    store: Arc<dyn Store>,
    mut run: Run,
    org: OrgId,
    mut checkpoint: Checkpoint,
    mut queue: mpsc::UnboundedReceiver<Queued<Prepared>>,
    progress: Option<(Progress, Arc<std::sync::Mutex<Expected>>)>,
) -> Result<Run, (Run, SinkError)> {
    let mut last_saved = Instant::now();
    // By listing: what its pages applied since its last mark fetched.
    let mut unmarked: BTreeMap<&'static str, RunCounts> = BTreeMap::new();
    let mut lingers = Lingers::for_run(run.kind);
    // A batch lingers no later than its run's progress is due to be saved.
    while let Some(mut batch) = Batch::next(&mut queue, lingers.next(), last_saved + PROGRESS_EVERY).await {
        let mut moved = false;
        for (Mark { listing, at }, fetched) in batch.merged.marks.drain(..) {
            let pending = unmarked.entry(listing).or_default();
            match at {
                Some(at) => {
                    checkpoint.set(listing, at);
                    *pending = RunCounts::default();
                    moved = true;
                }
                None => pending.add(&fetched),
            }
        }
        let pending = unmarked.values().fold(RunCounts::default(), |mut all, p| {
            all.add(p);
            all
        });
        let page = &batch.merged;
        let write = PageWrite {
            entities: &page.entities,
            memberships: &page.memberships,
            whole_groups: &page.whole_groups,
            removals: &page.removals,
            checkpoint: moved.then_some(Checkpointed { marks: &checkpoint.0, unmarked: &pending }),
        };
        let mut counts = match store.apply_page(&run, org, write).await {
            Ok(counts) => counts,
            Err(e) => return Err((run, SinkError(format!("could not store a page: {e}")))),
        };
        counts.pages = batch.pages;
        counts.retries = u64::from(page.retries);
        run.counts.add(&counts);
        if let Some((progress, announced)) = &progress {
            let announced = announced.lock().expect("announcements lock").clone();
            progress(&run.counts, &announced);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// No progress save due while a test's batches are taken.
    fn never() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    /// Pages arriving every 10 ms for 8 s, as a source's replies do: the first batch is written
    /// after [`FIRST_LINGER`] with the pages of that time, and later batches grow until each
    /// holds [`LINGER`] of pages.
    #[tokio::test(start_paused = true)]
    async fn a_slow_runs_batches_grow_from_its_first_pages_to_seconds_of_them() {
        let (pages, mut queue) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(1_000));
        tokio::spawn(async move {
            for n in 0..800 {
                let member = Membership {
                    group_id: "00g1".into(),
                    member_kind: ctxsync_core::EntityKind::User,
                    member_id: format!("00u{n}"),
                };
                let page = Prepared { memberships: vec![member], ..Prepared::default() };
                let _room = room.clone().acquire_owned().await.unwrap();
                pages.send(Queued { page, _room }).unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let started = Instant::now();
        let mut lingers = Lingers::for_run(RunKind::Full);
        let mut sizes = Vec::new();
        let mut first_written = None;
        while let Some(batch) = Batch::next(&mut queue, lingers.next(), never()).await {
            first_written.get_or_insert(started.elapsed());
            sizes.push(batch.pages);
        }
        assert_eq!(sizes.iter().sum::<u64>(), 800, "{sizes:?}");
        assert_eq!(first_written, Some(FIRST_LINGER), "the first batch waits only the first linger");
        assert!((5..=6).contains(&sizes[0]), "the first batch holds 50 ms of pages: {sizes:?}");
        assert!(sizes.windows(2).take(5).all(|w| w[1] >= 2 * w[0] - 1), "batches double: {sizes:?}");
        let (settled, [_last]) = sizes[6..].split_at(sizes.len() - 7) else { unreachable!() };
        assert!(!settled.is_empty(), "{sizes:?}");
        assert!(settled.iter().all(|&n| (199..=201).contains(&n)), "2 s of pages a batch: {sizes:?}");
    }

    /// An incremental run's first page is written as soon as it comes, with the pages queued
    /// behind it and none of those that come later.
    #[tokio::test(start_paused = true)]
    async fn an_incremental_runs_batches_take_only_the_pages_queued() {
        let (pages, mut queue) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(1_000));
        for _ in 0..3 {
            let _room = room.clone().acquire_owned().await.unwrap();
            pages.send(Queued { page: Prepared::default(), _room }).unwrap();
        }
        let feeder = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let _room = room.clone().acquire_owned().await.unwrap();
            pages.send(Queued { page: Prepared::default(), _room }).unwrap();
        });
        let started = Instant::now();
        let mut lingers = Lingers::for_run(RunKind::Incremental);
        let batch = Batch::next(&mut queue, lingers.next(), never()).await.unwrap();
        assert_eq!((batch.pages, started.elapsed()), (3, Duration::ZERO));
        let batch = Batch::next(&mut queue, lingers.next(), never()).await.unwrap();
        assert_eq!((batch.pages, started.elapsed()), (1, Duration::from_millis(5)));
        feeder.await.unwrap();
    }

    /// A batch that could linger 2 s is written when the run's progress is due to be saved.
    #[tokio::test(start_paused = true)]
    async fn a_batch_is_written_when_progress_is_due() {
        let (pages, mut queue) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(1_000));
        let feeder = tokio::spawn(async move {
            loop {
                let _room = room.clone().acquire_owned().await.unwrap();
                if pages.send(Queued { page: Prepared::default(), _room }).is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let started = Instant::now();
        let due = started + Duration::from_millis(350);
        let batch = Batch::next(&mut queue, LINGER, due).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_millis(350));
        assert_eq!(batch.pages, 4, "the pages of 0, 100, 200 and 300 ms");
        drop(queue);
        feeder.await.unwrap();
    }

    /// Heavy pages 100 ms apart: a batch stops waiting once it holds [`LINGER_WEIGHT`], but still
    /// takes the pages already queued, up to [`BATCH_WEIGHT`].
    #[tokio::test(start_paused = true)]
    async fn a_heavy_batch_waits_for_no_more_pages_but_takes_the_queued_ones() {
        let (pages, mut queue) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(QUEUE_WEIGHT));
        let page = move |members: usize| {
            let member = Membership {
                group_id: "00g1".into(),
                member_kind: ctxsync_core::EntityKind::User,
                member_id: "00u1".into(),
            };
            let _room = room.clone().try_acquire_many_owned(members as u32).unwrap();
            Queued { page: Prepared { memberships: vec![member; members], ..Prepared::default() }, _room }
        };
        let heavy = LINGER_WEIGHT * 2 / 5;
        pages.send(page(heavy)).unwrap();
        let feeder = tokio::spawn(async move {
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                pages.send(page(heavy)).unwrap();
            }
            (pages, page)
        });
        let started = Instant::now();
        let batch = Batch::next(&mut queue, LINGER, never()).await.unwrap();
        assert_eq!(batch.pages, 3, "two more pages bring the batch over its lingering weight");
        assert_eq!(started.elapsed(), Duration::from_millis(200), "written as soon as it was heavy enough");

        let (pages, page) = feeder.await.unwrap();
        for _ in 0..6 {
            pages.send(page(BATCH_WEIGHT / 8)).unwrap();
        }
        let started = Instant::now();
        let batch = Batch::next(&mut queue, LINGER, never()).await.unwrap();
        assert_eq!(
            batch.pages, 8,
            "the queued pages are taken whatever the batch's weight: the 2 heavy, then 6"
        );
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
