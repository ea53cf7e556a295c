//! What several VMs of one Envoy share (Envoy's per-process state): shared
//! data with CAS, shared queues, and metrics. Give two hosts the same
//! [`SharedState`] to model two workers running the same plugin.

use crate::state::Status;
use crate::types::MetricValue;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Process-wide state shared by the VMs (workers) given the same handle.
#[derive(Clone, Default)]
pub struct SharedState(Arc<Mutex<Inner>>);

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedState").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    next_uid: u64,
    next_cas: u32,
    data: BTreeMap<(String, String), (Vec<u8>, u32)>,
    queues: Vec<Queue>,
    metrics: Vec<Metric>,
}

struct Queue {
    vm_id: String,
    name: String,
    owner: (u64, u32),
    items: VecDeque<Vec<u8>>,
    /// Readiness not yet delivered to the owner.
    ready: u32,
}

struct Metric {
    name: String,
    value: MetricValue,
}

/// A metric type as `proxy_define_metric` passes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    pub(crate) fn from_raw(raw: i32) -> Option<Self> {
        match raw {
            0 => Some(MetricType::Counter),
            1 => Some(MetricType::Gauge),
            2 => Some(MetricType::Histogram),
            _ => None,
        }
    }
}

impl SharedState {
    /// A fresh process (nothing shared yet).
    pub fn new() -> Self {
        SharedState::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn next_uid(&self) -> u64 {
        let mut g = self.lock();
        g.next_uid += 1;
        g.next_uid
    }

    // ----- shared data ----------------------------------------------------------------------

    /// `proxy_get_shared_data`: the value and its CAS.
    pub(crate) fn get_data(&self, vm_id: &str, key: &str) -> Result<(Vec<u8>, u32), Status> {
        self.lock()
            .data
            .get(&(vm_id.to_owned(), key.to_owned()))
            .cloned()
            .ok_or(Status::NotFound)
    }

    /// `proxy_set_shared_data`: CAS 0 always writes; any other CAS must
    /// match the stored one (else `CasMismatch`).
    pub(crate) fn set_data(
        &self,
        vm_id: &str,
        key: &str,
        value: Vec<u8>,
        cas: u32,
    ) -> Result<(), Status> {
        let mut g = self.lock();
        let k = (vm_id.to_owned(), key.to_owned());
        if cas != 0 {
            match g.data.get(&k) {
                Some((_, current)) if *current == cas => {}
                _ => return Err(Status::CasMismatch),
            }
        }
        g.next_cas = g.next_cas.wrapping_add(1).max(1);
        let next = g.next_cas;
        g.data.insert(k, (value, next));
        Ok(())
    }

    /// The value of a shared-data key, as a test reads it.
    pub fn shared_data(&self, vm_id: &str, key: &str) -> Option<Vec<u8>> {
        self.get_data(vm_id, key).ok().map(|(v, _)| v)
    }

    // ----- queues ---------------------------------------------------------------------------

    /// `proxy_register_shared_queue`: the same (vm id, name) keeps its id;
    /// the latest registrant owns it.
    pub(crate) fn register_queue(&self, vm_id: &str, name: &str, owner: (u64, u32)) -> u32 {
        let mut g = self.lock();
        if let Some((i, q)) = g
            .queues
            .iter_mut()
            .enumerate()
            .find(|(_, q)| q.vm_id == vm_id && q.name == name)
        {
            q.owner = owner;
            return u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
        g.queues.push(Queue {
            vm_id: vm_id.to_owned(),
            name: name.to_owned(),
            owner,
            items: VecDeque::new(),
            ready: 0,
        });
        u32::try_from(g.queues.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn resolve_queue(&self, vm_id: &str, name: &str) -> Result<u32, Status> {
        let g = self.lock();
        g.queues
            .iter()
            .position(|q| q.vm_id == vm_id && q.name == name)
            .and_then(|i| u32::try_from(i + 1).ok())
            .ok_or(Status::NotFound)
    }

    pub(crate) fn enqueue(&self, id: u32, data: Vec<u8>) -> Result<(), Status> {
        let mut g = self.lock();
        let q = queue_mut(&mut g, id).ok_or(Status::NotFound)?;
        q.items.push_back(data);
        q.ready += 1;
        Ok(())
    }

    pub(crate) fn dequeue(&self, id: u32) -> Result<Vec<u8>, Status> {
        let mut g = self.lock();
        let q = queue_mut(&mut g, id).ok_or(Status::NotFound)?;
        q.items.pop_front().ok_or(Status::Empty)
    }

    /// Takes the queue-ready notifications owed to host `uid`: (root
    /// context, queue id), one per enqueue.
    pub(crate) fn take_ready(&self, uid: u64) -> Vec<(u32, u32)> {
        let mut g = self.lock();
        let mut out = Vec::new();
        for (i, q) in g.queues.iter_mut().enumerate() {
            if q.owner.0 == uid {
                for _ in 0..q.ready {
                    out.push((q.owner.1, u32::try_from(i + 1).unwrap_or(u32::MAX)));
                }
                q.ready = 0;
            }
        }
        out
    }

    // ----- metrics --------------------------------------------------------------------------

    /// `proxy_define_metric`: the same name keeps its id.
    pub(crate) fn define_metric(&self, ty: MetricType, name: &str) -> u32 {
        let mut g = self.lock();
        if let Some(i) = g.metrics.iter().position(|m| m.name == name) {
            return u32::try_from(i + 1).unwrap_or(u32::MAX);
        }
        let value = match ty {
            MetricType::Counter => MetricValue::Counter(0),
            MetricType::Gauge => MetricValue::Gauge(0),
            MetricType::Histogram => MetricValue::Histogram(Vec::new()),
        };
        g.metrics.push(Metric {
            name: name.to_owned(),
            value,
        });
        u32::try_from(g.metrics.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn increment_metric(&self, id: u32, offset: i64) -> Result<(), Status> {
        let mut g = self.lock();
        let m = metric_mut(&mut g, id).ok_or(Status::NotFound)?;
        match &mut m.value {
            MetricValue::Counter(v) => {
                let by = u64::try_from(offset).map_err(|_| Status::BadArgument)?;
                *v = v.saturating_add(by);
            }
            MetricValue::Gauge(v) => {
                *v = if offset >= 0 {
                    v.saturating_add(offset.unsigned_abs())
                } else {
                    v.saturating_sub(offset.unsigned_abs())
                };
            }
            MetricValue::Histogram(_) => return Err(Status::BadArgument),
        }
        Ok(())
    }

    pub(crate) fn record_metric(&self, id: u32, value: u64) -> Result<(), Status> {
        let mut g = self.lock();
        let m = metric_mut(&mut g, id).ok_or(Status::NotFound)?;
        match &mut m.value {
            MetricValue::Counter(v) | MetricValue::Gauge(v) => *v = value,
            MetricValue::Histogram(values) => values.push(value),
        }
        Ok(())
    }

    pub(crate) fn get_metric(&self, id: u32) -> Result<u64, Status> {
        let mut g = self.lock();
        let m = metric_mut(&mut g, id).ok_or(Status::NotFound)?;
        match &m.value {
            MetricValue::Counter(v) | MetricValue::Gauge(v) => Ok(*v),
            MetricValue::Histogram(_) => Err(Status::BadArgument),
        }
    }

    /// A metric by the name the plugin defined it with.
    pub fn metric(&self, name: &str) -> Option<MetricValue> {
        self.lock()
            .metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value.clone())
    }

    /// Every metric, by name.
    pub fn metrics(&self) -> BTreeMap<String, MetricValue> {
        self.lock()
            .metrics
            .iter()
            .map(|m| (m.name.clone(), m.value.clone()))
            .collect()
    }
}

fn queue_mut(g: &mut Inner, id: u32) -> Option<&mut Queue> {
    let i = usize::try_from(id).ok()?.checked_sub(1)?;
    g.queues.get_mut(i)
}

fn metric_mut(g: &mut Inner, id: u32) -> Option<&mut Metric> {
    let i = usize::try_from(id).ok()?.checked_sub(1)?;
    g.metrics.get_mut(i)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cas_guards_writes_and_a_missing_key_is_not_found() {
        let s = SharedState::new();
        assert_eq!(s.get_data("vm", "k"), Err(Status::NotFound));
        // CAS on a missing key mismatches; CAS 0 always writes.
        assert_eq!(
            s.set_data("vm", "k", b"a".to_vec(), 5),
            Err(Status::CasMismatch)
        );
        s.set_data("vm", "k", b"a".to_vec(), 0).unwrap();
        let (v, cas) = s.get_data("vm", "k").unwrap();
        assert_eq!(v, b"a");
        s.set_data("vm", "k", b"b".to_vec(), cas).unwrap();
        // The old CAS is stale now.
        assert_eq!(
            s.set_data("vm", "k", b"c".to_vec(), cas),
            Err(Status::CasMismatch)
        );
        assert_eq!(s.shared_data("vm", "k").unwrap(), b"b");
        // Another vm_id is another namespace.
        assert_eq!(s.get_data("other", "k"), Err(Status::NotFound));
    }

    #[test]
    fn metrics_by_type() {
        let s = SharedState::new();
        let c = s.define_metric(MetricType::Counter, "c");
        assert_eq!(s.define_metric(MetricType::Counter, "c"), c);
        s.increment_metric(c, 3).unwrap();
        assert_eq!(s.increment_metric(c, -1), Err(Status::BadArgument));
        assert_eq!(s.get_metric(c), Ok(3));
        let g = s.define_metric(MetricType::Gauge, "g");
        s.record_metric(g, 10).unwrap();
        s.increment_metric(g, -4).unwrap();
        assert_eq!(s.metric("g"), Some(MetricValue::Gauge(6)));
        let h = s.define_metric(MetricType::Histogram, "h");
        s.record_metric(h, 1).unwrap();
        s.record_metric(h, 2).unwrap();
        assert_eq!(s.metric("h"), Some(MetricValue::Histogram(vec![1, 2])));
        assert_eq!(s.get_metric(h), Err(Status::BadArgument));
    }
}
