//! Finds due configs and runs them, a bounded number at a time, until told to stop.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use ctxsync_core::ConfigId;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::worker::{Outcome, RunOptions, Worker};

pub struct Scheduler {
    worker: Worker,
    /// Configs this process is syncing now; the lease guards across processes.
    running: Arc<Mutex<HashSet<ConfigId>>>,
    slots: Arc<Semaphore>,
    /// Told when a run is asked for in this process, so it starts without waiting for a tick.
    wake: Arc<Notify>,
}

impl Scheduler {
    pub fn new(worker: Worker) -> Scheduler {
        let slots = Arc::new(Semaphore::new(worker.settings().concurrency.max(1)));
        Scheduler { worker, running: Arc::default(), slots, wake: Arc::default() }
    }

    /// The worker its runs go to.
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Also looks for due configs whenever `wake` is notified (a push, "sync now").
    pub fn woken_by(self, wake: Arc<Notify>) -> Scheduler {
        Scheduler { wake, ..self }
    }

    /// Looks for due configs every tick, when woken, and when a run ends (one asked for during it
    /// is due at once), and starts their runs; on `stop`, cancels the runs in flight (their
    /// upserts stay, nothing is half-deleted) and waits for them.
    pub async fn run_until_stopped(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.worker.settings().tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => self.start_due(&mut tasks, &stop).await,
                () = self.wake.notified() => self.start_due(&mut tasks, &stop).await,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => self.start_due(&mut tasks, &stop).await,
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Starts the due configs there are free slots for.
    async fn start_due(&self, tasks: &mut JoinSet<Outcome>, stop: &CancellationToken) {
        let free = self.slots.available_permits();
        if free == 0 {
            return;
        }
        let due = match self.worker.store().due_configs(ctxsync_core::now(), free as u32 * 2).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for due configs; retrying at the next tick");
                return;
            }
        };
        for config in due {
            if !self.running.lock().expect("not poisoned").insert(config.id) {
                continue;
            }
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                self.running.lock().expect("not poisoned").remove(&config.id);
                break;
            };
            let (worker, running, stop) = (self.worker.clone(), self.running.clone(), stop.clone());
            tasks.spawn(async move {
                let outcome = worker.run(&config, RunOptions::default(), &stop).await.unwrap_or_else(|e| {
                    tracing::warn!(config_id = %config.id, error = %e, "a sync run could not be recorded");
                    Outcome::Skipped(e.to_string())
                });
                running.lock().expect("not poisoned").remove(&config.id);
                drop(permit);
                outcome
            });
        }
    }
}
