//! Devices and their registered owners, a relationship no delta query can expand: a full run
//! lists the devices with their owners expanded, an incremental one reads the owners of each
//! page's changed devices by id.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use serde_json::Value;

use super::super::client::{Failure, GraphClient};
use super::Run;
use super::wire::{DEVICE_SELECT, DeltaPage, Item, Listing, Objects};
use crate::SourceError;
use crate::http::Reply;
use crate::sync::{Mark, SyncError, overlapped};

/// A device's owners, only their ids (users are read on their own).
const OWNERS: &str = "registeredOwners($select=id)";
/// Graph serves at most 100 objects a page when it expands a relationship of each.
const EXPANDED_PAGE: usize = 100;
/// The most values one `in` of a list's `$filter` may hold.
const FILTER_IN: usize = 15;

impl Run<'_> {
    /// A full run's devices, listed with their owners expanded (delta queries cannot expand
    /// them). The devices' delta starts from before the listing ("sync from now"), so whatever
    /// changes while it is read comes again in the next incremental run. Returns that delta link.
    pub(super) async fn all_devices(&self, client: &GraphClient<'_>) -> Result<String, SyncError> {
        let decode = |r: &Reply| serde_json::from_slice::<DeltaPage>(&r.body).ok();
        let latest =
            client.url(&["devices", "delta"], &format!("$select={DEVICE_SELECT}&$deltatoken=latest"));
        let start = match client.fetch(&latest, "devices", &[], decode).await {
            Ok((start, retried)) => {
                self.retries.fetch_add(retried, Ordering::Relaxed);
                start
            }
            // Graph documents "sync from now" for users and groups; should it refuse it for
            // devices, the whole delta round lists them, each page's owners read by id.
            Err(Failure::Other(SourceError::Rejected(said))) => {
                tracing::info!(%said, "no devices delta from now: listing the devices through delta");
                let start = client.url(&["devices", "delta"], &format!("$select={DEVICE_SELECT}"));
                return self.round(client, Listing::Devices, start).await;
            }
            Err(failure) => return Err(self.failure(failure)),
        };
        let Some(delta_link) = start.delta_link else {
            return Err(SourceError::Unreachable(format!(
                "{} answered a devices delta query without @odata.deltaLink; try again",
                client.graph().display()
            ))
            .into());
        };
        let expanded = client
            .url(&["devices"], &format!("$select={DEVICE_SELECT}&$expand={OWNERS}&$top={EXPANDED_PAGE}"));
        let mut fetched = match client.fetch(&expanded, "devices' registered owners", &[], decode).await {
            Err(Failure::Denied(error)) => {
                self.deny_owners(error);
                let plain = client.url(&["devices"], &format!("$select={DEVICE_SELECT}&$top=999"));
                client.fetch(&plain, "devices", &[], decode).await
            }
            other => other,
        };
        loop {
            let (page, retries) = fetched.map_err(|f| self.failure(f))?;
            let next = page.next_link.map(|link| client.rebase(&link)).transpose()?;
            let last = next.is_none();
            let store = async {
                let mut out = self.page(Objects::Devices(page.value));
                // Marked once listed: a resumed run lists the devices again until then.
                out.mark = match last {
                    false => Some(Mark::within(Listing::Devices.name())),
                    true => self.mark(Listing::Devices, None, Some(&delta_link)),
                };
                self.hand_over(out, retries).await
            };
            let Some(next) = next else {
                store.await?;
                return Ok(delta_link);
            };
            let ((), next_page) = overlapped(store, client.fetch(&next, "devices", &[], decode)).await?;
            fetched = next_page;
        }
    }

    /// Puts on a delta page's changed devices their `registeredOwners`, as the full run's list
    /// has them, read from the device list filtered to their ids (15 a request, the most an
    /// `in` may hold; such an answer is one page). Returns how many requests were retried.
    /// Owners are not tracked by the delta itself, so an owner replaced on a device that did not
    /// otherwise change shows on the next full run.
    pub(super) async fn attach_owners(
        &self,
        client: &GraphClient<'_>,
        items: &mut [Item],
    ) -> Result<u32, SyncError> {
        let ids: Vec<&str> = items
            .iter()
            .filter(|i| !i.object.contains_key("@removed"))
            .filter_map(|i| i.object.get("id")?.as_str())
            .collect();
        let mut owners: HashMap<String, Value> = HashMap::new();
        let mut retries = 0;
        for chunk in ids.chunks(FILTER_IN) {
            if self.owners_denied.load(Ordering::Relaxed) {
                break;
            }
            let quoted: Vec<String> =
                chunk.iter().map(|id| format!("'{}'", id.replace('\'', "''"))).collect();
            let filter = format!("id in ({})", quoted.join(","));
            let filter: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
            let url = client.url(&["devices"], &format!("$filter={filter}&$select=id&$expand={OWNERS}"));
            let decode = |r: &Reply| serde_json::from_slice::<DeltaPage>(&r.body).ok();
            match client.fetch(&url, "devices' registered owners", &[], decode).await {
                Ok((page, retried)) => {
                    retries += retried;
                    for Item { mut object, .. } in page.value {
                        let id = object.get("id").and_then(Value::as_str).map(str::to_string);
                        if let (Some(id), Some(list)) = (id, object.remove("registeredOwners")) {
                            owners.insert(id, list);
                        }
                    }
                }
                Err(Failure::Denied(error)) => self.deny_owners(error),
                Err(failure) => return Err(self.failure(failure)),
            }
        }
        for item in items {
            let id = item.object.get("id").and_then(Value::as_str);
            if let Some(list) = id.and_then(|id| owners.remove(id)) {
                item.object.insert("registeredOwners".to_string(), list);
            }
        }
        Ok(retries)
    }

    /// Devices still sync when Graph will not say who owns them, only without owners.
    pub(super) fn deny_owners(&self, error: SourceError) {
        self.owners_denied.store(true, Ordering::Relaxed);
        tracing::warn!(
            %error,
            "cannot read the devices' registered owners: devices are synced without owners, so persons do not \
             gain their Entra ID devices"
        );
    }
}
