//! Per-request rule matching for the `_rules_` config model.
//!
//! The matcher is built once, at configure time, from the rules that
//! [`crate::config`] parsed. Its answer for a request is the **lowest rule
//! index** whose match condition holds (the first rule in configuration order
//! wins, as in the Go wrapper's `GetMatchConfig`); when no rule matches, the
//! global config (if any) applies.
//!
//! To keep the request path cheap, the rules are split at build time:
//! exact route names and exact domains go into sorted tables searched by
//! bisection (the first rule that names a key owns it), and everything else
//! (wildcard domains, services, route prefixes, route + service) goes into a
//! list kept in rule order. A lookup takes the best exact hit and then scans
//! the list only up to that index. (Sorted `Vec`s rather than hash maps: the
//! same `O(log n)` lookups for far less code in the `.wasm`.)
//! Matching does no JSON work and does not allocate.

use std::rc::Rc;

/// How a rule is matched, chosen from which match keys it has, with the Go
/// wrapper's precedence: route (+ service) > domain > service > route prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    /// `_match_route_`: the route name equals one of the names.
    Route,
    /// `_match_domain_`: the request host matches one of the patterns.
    Host,
    /// `_match_service_`: the cluster name names one of the services.
    Service,
    /// `_match_route_prefix_`: the route name starts with one of the prefixes.
    RoutePrefix,
    /// `_match_route_` and `_match_service_`: both must hold.
    RouteAndService,
}

/// The match conditions of one rule, already validated and filtered the way
/// the Go wrapper filters them (empty route names, services and prefixes are
/// dropped; domains are kept as written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MatchConditions {
    /// Exact route names (`_match_route_`).
    pub(crate) routes: Vec<String>,
    /// Domain patterns (`_match_domain_`).
    pub(crate) domains: Vec<String>,
    /// Service entries, `fqdn` or `fqdn:port` (`_match_service_`).
    pub(crate) services: Vec<String>,
    /// Route-name prefixes (`_match_route_prefix_`).
    pub(crate) route_prefixes: Vec<String>,
}

impl MatchConditions {
    /// The category these conditions give, or `None` when every list is
    /// empty (such a rule is rejected by the config parser).
    pub(crate) fn category(&self) -> Option<Category> {
        Category::of(
            !self.routes.is_empty(),
            !self.domains.is_empty(),
            !self.services.is_empty(),
            !self.route_prefixes.is_empty(),
        )
    }
}

impl Category {
    /// The category of a rule that has (non-empty) routes, domains,
    /// services and route prefixes as given; `None` when it has none.
    pub(crate) fn of(route: bool, domain: bool, service: bool, prefix: bool) -> Option<Self> {
        if route {
            if service {
                Some(Category::RouteAndService)
            } else {
                Some(Category::Route)
            }
        } else if domain {
            Some(Category::Host)
        } else if service {
            Some(Category::Service)
        } else if prefix {
            Some(Category::RoutePrefix)
        } else {
            None
        }
    }
}

/// One parsed rule handed to [`RuleMatcher::new`].
#[derive(Debug)]
pub(crate) struct RuleSpec<C> {
    /// What the rule matches on.
    pub(crate) conditions: MatchConditions,
    /// Human-readable location, e.g. `_rules_[1] (_match_domain_: ["*.a.com"])`.
    pub(crate) description: String,
    /// The rule's parsed config.
    pub(crate) config: C,
}

/// The outcome of [`RuleMatcher::find`].
#[derive(Debug)]
pub(crate) enum Matched<'a, C> {
    /// Rule `index` (0-based position in `_rules_`) matched.
    Rule {
        /// Position of the rule in `_rules_`.
        index: usize,
        /// The rule's config.
        config: &'a Rc<C>,
    },
    /// No rule matched; the global config applies.
    Global(&'a Rc<C>),
    /// No rule matched and there is no global config: the plugin is inactive
    /// for this request.
    None,
}

impl<C> Clone for Matched<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Matched<'_, C> {}

/// A domain pattern from `_match_domain_`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// Leading `*`: the host ends with this (`*` alone gives `""`, i.e. any host).
    Suffix(Box<str>),
    /// Trailing `*`: the host starts with this.
    Prefix(Box<str>),
    /// No recognised wildcard: the host equals this.
    Exact(Box<str>),
}

impl HostPattern {
    /// Parses one pattern the way the Go wrapper does: only a leading or a
    /// trailing `*` is special (the leading one wins); a `*` in the middle is
    /// literal.
    fn parse(pattern: &str) -> Self {
        if let Some(rest) = pattern.strip_prefix('*') {
            HostPattern::Suffix(rest.into())
        } else if let Some(rest) = pattern.strip_suffix('*') {
            HostPattern::Prefix(rest.into())
        } else {
            HostPattern::Exact(pattern.into())
        }
    }

    fn matches(&self, host: &[u8]) -> bool {
        match self {
            HostPattern::Suffix(s) => host.ends_with(s.as_bytes()),
            HostPattern::Prefix(p) => host.starts_with(p.as_bytes()),
            HostPattern::Exact(e) => host == e.as_bytes(),
        }
    }
}

/// A `_match_service_` entry: `fqdn` (any port) or `fqdn:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServiceEntry {
    /// The entry as written.
    whole: Box<str>,
    /// Byte position of the last `:`, if any.
    colon: Option<usize>,
}

impl ServiceEntry {
    fn new(entry: &str) -> Self {
        ServiceEntry {
            whole: entry.into(),
            colon: entry.bytes().rposition(|b| b == b':'),
        }
    }

    /// Go's `serviceMatch` for one entry: `fqdn:port` (split at the last
    /// `:`) must equal both parts; otherwise the whole entry must equal the
    /// FQDN.
    fn matches(&self, cluster: ClusterParts<'_>) -> bool {
        if let Some(colon) = self.colon {
            let fqdn = self.whole.get(..colon);
            let port = self.whole.get(colon.saturating_add(1)..);
            if fqdn == Some(cluster.fqdn) && port == Some(cluster.port) {
                return true;
            }
        }
        &*self.whole == cluster.fqdn
    }
}

/// The parts of an Istio-style cluster name `outbound|<port>|<subset>|<fqdn>`
/// that service matching needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClusterParts<'a> {
    port: &'a str,
    fqdn: &'a str,
}

/// Splits a cluster name on `|`; anything but exactly four parts is not a
/// service cluster and never matches (as in Go, the first part is not checked).
fn split_cluster(cluster: &str) -> Option<ClusterParts<'_>> {
    // Positions of exactly three `|` (ASCII: every cut is on a character
    // boundary); a fourth one means too many parts.
    let mut bars = [0usize; 3];
    let mut found = 0;
    for (i, b) in cluster.bytes().enumerate() {
        if b == b'|' {
            *bars.get_mut(found)? = i;
            found += 1;
        }
    }
    if found != 3 {
        return None;
    }
    let [first, second, third] = bars;
    Some(ClusterParts {
        port: cluster.get(first + 1..second)?,
        fqdn: cluster.get(third + 1..)?,
    })
}

/// Removes a trailing `:port` from a request host, borrowing.
///
/// Follows Envoy's `HeaderUtility::getPortStart` (as Go's `stripPortFromHost`
/// does): the text after the last `:` is dropped unless that colon is inside a
/// bracketed IPv6 literal (`[::1]` stays, `[::1]:8080` becomes `[::1]`). In
/// addition, a bare IPv6 address without brackets (more than one `:` and no
/// `]`, e.g. `::1`) is left unchanged instead of being cut at its last colon.
pub(crate) fn strip_port(host: &[u8]) -> &[u8] {
    let Some(colon) = host.iter().rposition(|&b| b == b':') else {
        return host;
    };
    match host.iter().rposition(|&b| b == b']') {
        // The last colon is inside `[...]`: no port.
        Some(close) if close > colon => host,
        Some(_) => host.get(..colon).unwrap_or(host),
        None => {
            let before = host.get(..colon).unwrap_or(host);
            if before.contains(&b':') {
                // Unbracketed IPv6 such as `::1` or `fe80::1`: no port.
                host
            } else {
                before
            }
        }
    }
}

/// A table of exact keys sorted by their bytes, each with the first rule
/// that names it.
type ExactTable = Vec<(Box<str>, usize)>;

/// Adds `key` for rule `index` unless an earlier rule already owns it
/// (for small tables; large ones are built with [`exact_sort`]).
fn exact_insert(table: &mut ExactTable, key: &str, index: usize) {
    if let Err(at) = table.binary_search_by(|(k, _)| k.as_bytes().cmp(key.as_bytes())) {
        table.insert(at, (key.into(), index));
    }
}

/// Sorts a table filled in rule order and keeps, for each key, the entry of
/// the first rule that names it: the same table as [`exact_insert`] builds,
/// in `O(n log n)` instead of `O(n^2)` for many rules.
fn exact_sort(table: &mut ExactTable) {
    heap_sort(table, |(a, i), (b, j)| {
        a.as_bytes().cmp(b.as_bytes()).then(i.cmp(j)).is_lt()
    });
    // `dedup_by` drops the later of two neighbours (its first argument).
    table.dedup_by(|(later, _), (earlier, _)| later == earlier);
    table.shrink_to_fit();
}

/// Sorts `items` by `less` (a strict total order), in place, in
/// `O(n log n)` without allocating.
///
/// A heap sort rather than `sort_unstable_by`: the standard sorts are
/// several kilobytes of `.wasm` per element type, this is a few hundred
/// bytes, and it runs once, at configure time.
fn heap_sort<T>(items: &mut [T], less: impl Fn(&T, &T) -> bool) {
    // Moves the element at `root` down until both children are smaller,
    // within `heap` (the first `end` elements).
    let sift_down = |heap: &mut [T], mut root: usize| loop {
        let left = 2 * root + 1;
        let right = left + 1;
        let mut largest = root;
        for child in [left, right] {
            if let (Some(c), Some(l)) = (heap.get(child), heap.get(largest)) {
                if less(l, c) {
                    largest = child;
                }
            }
        }
        if largest == root {
            break;
        }
        heap.swap(root, largest);
        root = largest;
    };
    let len = items.len();
    for root in (0..len / 2).rev() {
        sift_down(items, root);
    }
    for end in (1..len).rev() {
        items.swap(0, end);
        if let Some(heap) = items.get_mut(..end) {
            sift_down(heap, 0);
        }
    }
}

/// The rule that owns `key`, if any.
fn exact_get(table: &ExactTable, key: &[u8]) -> Option<usize> {
    table
        .binary_search_by(|(k, _)| k.as_bytes().cmp(key))
        .ok()
        .and_then(|at| table.get(at))
        .map(|(_, index)| *index)
}

/// A rule condition that cannot be answered by an exact lookup.
#[derive(Debug)]
enum ScanTest {
    /// The wildcard (suffix/prefix) patterns of a host rule; its exact
    /// patterns live in `exact_hosts`.
    Hosts(Vec<HostPattern>),
    /// A service rule.
    Services(Vec<ServiceEntry>),
    /// A route-prefix rule.
    RoutePrefixes(Vec<String>),
    /// A route + service rule: the route is one of the names and the cluster
    /// matches one of the services.
    RouteAndService {
        /// Sorted and deduplicated (an [`ExactTable`] whose indexes are unused).
        routes: ExactTable,
        services: Vec<ServiceEntry>,
    },
}

#[derive(Debug)]
struct ScanEntry {
    index: usize,
    test: ScanTest,
}

impl ScanEntry {
    fn matches(
        &self,
        host: Option<&[u8]>,
        route: Option<&str>,
        cluster: Option<ClusterParts<'_>>,
    ) -> bool {
        match &self.test {
            ScanTest::Hosts(patterns) => {
                host.is_some_and(|h| patterns.iter().any(|p| p.matches(h)))
            }
            ScanTest::Services(services) => {
                cluster.is_some_and(|c| services.iter().any(|s| s.matches(c)))
            }
            ScanTest::RoutePrefixes(prefixes) => {
                route.is_some_and(|r| prefixes.iter().any(|p| r.starts_with(p.as_str())))
            }
            ScanTest::RouteAndService { routes, services } => {
                route.is_some_and(|r| exact_get(routes, r.as_bytes()).is_some())
                    && cluster.is_some_and(|c| services.iter().any(|s| s.matches(c)))
            }
        }
    }
}

/// The prepared `_rules_` plus the optional global config.
///
/// Per rule it keeps the parsed config (behind an `Rc`, shared with the
/// requests that use it), its description (all descriptions in one string),
/// and its match keys in the exact tables or the scan list; the JSON of the
/// rules is not kept.
#[derive(Debug)]
pub(crate) struct RuleMatcher<C> {
    rules: Vec<Rc<C>>,
    /// Every rule's description, one after the other.
    descriptions: String,
    /// Where each rule's description ends in `descriptions`.
    description_ends: Vec<usize>,
    global: Option<Rc<C>>,
    /// Route name -> first `Route` rule naming it.
    exact_routes: ExactTable,
    /// Exact domain -> first `Host` rule naming it.
    exact_hosts: ExactTable,
    /// Every other condition, in rule order.
    scan: Vec<ScanEntry>,
    needs_host: bool,
    needs_route: bool,
    needs_cluster: bool,
}

/// Builds a [`RuleMatcher`] one rule at a time, so that a rule's JSON can be
/// dropped as soon as it is parsed.
#[derive(Debug)]
pub(crate) struct RuleMatcherBuilder<C> {
    matcher: RuleMatcher<C>,
}

impl<C> RuleMatcherBuilder<C> {
    /// A builder expecting about `rules` rules.
    pub(crate) fn with_capacity(rules: usize) -> Self {
        RuleMatcherBuilder {
            matcher: RuleMatcher {
                rules: Vec::with_capacity(rules),
                descriptions: String::new(),
                description_ends: Vec::with_capacity(rules),
                global: None,
                exact_routes: Vec::new(),
                exact_hosts: Vec::new(),
                scan: Vec::new(),
                needs_host: false,
                needs_route: false,
                needs_cluster: false,
            },
        }
    }

    /// Adds the next rule (rules must come in configuration order). A rule
    /// whose conditions are all empty never matches (the config parser
    /// rejects such rules before getting here).
    pub(crate) fn push(&mut self, spec: RuleSpec<C>) {
        let m = &mut self.matcher;
        let index = m.rules.len();
        m.add(index, spec.conditions);
        m.rules.push(Rc::new(spec.config));
        m.descriptions.push_str(&spec.description);
        m.description_ends.push(m.descriptions.len());
    }

    /// The matcher, with `global` as the config when no rule matches.
    pub(crate) fn finish(self, global: Option<C>) -> RuleMatcher<C> {
        let mut m = self.matcher;
        m.global = global.map(Rc::new);
        exact_sort(&mut m.exact_routes);
        exact_sort(&mut m.exact_hosts);
        m.scan.shrink_to_fit();
        m.rules.shrink_to_fit();
        m.descriptions.shrink_to_fit();
        m.description_ends.shrink_to_fit();
        m
    }
}

impl<C> RuleMatcher<C> {
    /// Prepares the matcher. `rules` must be in configuration order; a rule
    /// whose conditions are all empty never matches (the config parser
    /// rejects such rules before getting here).
    #[cfg(test)]
    pub(crate) fn new(rules: Vec<RuleSpec<C>>, global: Option<C>) -> Self {
        let mut builder = RuleMatcherBuilder::with_capacity(rules.len());
        for spec in rules {
            builder.push(spec);
        }
        builder.finish(global)
    }

    /// Files rule `index` under its category. Exact keys are appended in
    /// rule order; [`RuleMatcherBuilder::finish`] sorts them.
    fn add(&mut self, index: usize, cond: MatchConditions) {
        let Some(category) = cond.category() else {
            return;
        };
        match category {
            Category::Route => {
                self.needs_route = true;
                for route in cond.routes {
                    self.exact_routes.push((route.into_boxed_str(), index));
                }
            }
            Category::Host => {
                self.needs_host = true;
                let mut wildcards = Vec::new();
                for pattern in &cond.domains {
                    match HostPattern::parse(pattern) {
                        HostPattern::Exact(exact) => self.exact_hosts.push((exact, index)),
                        other => wildcards.push(other),
                    }
                }
                if !wildcards.is_empty() {
                    self.scan.push(ScanEntry {
                        index,
                        test: ScanTest::Hosts(wildcards),
                    });
                }
            }
            Category::Service => {
                self.needs_cluster = true;
                self.scan.push(ScanEntry {
                    index,
                    test: ScanTest::Services(services(&cond.services)),
                });
            }
            Category::RoutePrefix => {
                self.needs_route = true;
                self.scan.push(ScanEntry {
                    index,
                    test: ScanTest::RoutePrefixes(cond.route_prefixes),
                });
            }
            Category::RouteAndService => {
                self.needs_route = true;
                self.needs_cluster = true;
                self.scan.push(ScanEntry {
                    index,
                    test: ScanTest::RouteAndService {
                        routes: {
                            let mut routes = ExactTable::new();
                            for route in &cond.routes {
                                exact_insert(&mut routes, route, index);
                            }
                            routes
                        },
                        services: services(&cond.services),
                    },
                });
            }
        }
    }

    /// Whether any rule matches on the domain, i.e. whether the caller must
    /// read `:authority` before calling [`RuleMatcher::find`].
    pub(crate) fn needs_host(&self) -> bool {
        self.needs_host
    }

    /// Whether any rule matches on the route name (route, route prefix, or
    /// route + service).
    pub(crate) fn needs_route(&self) -> bool {
        self.needs_route
    }

    /// Whether any rule matches on the cluster name (service, or route +
    /// service).
    pub(crate) fn needs_cluster(&self) -> bool {
        self.needs_cluster
    }

    /// Finds the config for a request.
    ///
    /// `host` is the raw `:authority` (the port is stripped here), `route`
    /// the `route_name` property and `cluster` the `cluster_name` property.
    /// `None` means "unknown": no rule that needs that value can match (a
    /// missing route or cluster behaves like Go's empty string; a missing host
    /// matches no domain rule, not even `*`).
    pub(crate) fn find(
        &self,
        host: Option<&[u8]>,
        route: Option<&str>,
        cluster: Option<&str>,
    ) -> Matched<'_, C> {
        let host = host.map(strip_port);
        let mut best: Option<usize> = None;
        if let Some(i) = route.and_then(|r| exact_get(&self.exact_routes, r.as_bytes())) {
            best = Some(i);
        }
        if let Some(i) = host.and_then(|h| exact_get(&self.exact_hosts, h)) {
            best = Some(best.map_or(i, |b| b.min(i)));
        }
        let cluster = cluster.and_then(split_cluster);
        for entry in &self.scan {
            if best.is_some_and(|b| entry.index >= b) {
                break;
            }
            if entry.matches(host, route, cluster) {
                best = Some(entry.index);
                break;
            }
        }
        if let Some(index) = best {
            if let Some(config) = self.rules.get(index) {
                return Matched::Rule { index, config };
            }
        }
        match &self.global {
            Some(global) => Matched::Global(global),
            None => Matched::None,
        }
    }

    /// The global config, if one was configured and parsed.
    pub(crate) fn global(&self) -> Option<&Rc<C>> {
        self.global.as_ref()
    }

    /// Number of rules.
    pub(crate) fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The precomputed description of rule `i`, e.g.
    /// `_rules_[1] (_match_domain_: ["*.a.com"])`, for logs.
    pub(crate) fn describe_rule(&self, i: usize) -> Option<&str> {
        let end = *self.description_ends.get(i)?;
        let start = match i.checked_sub(1) {
            Some(before) => *self.description_ends.get(before)?,
            None => 0,
        };
        self.descriptions.get(start..end)
    }
}

fn services(entries: &[String]) -> Vec<ServiceEntry> {
    entries.iter().map(|s| ServiceEntry::new(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn routes(items: &[&str]) -> MatchConditions {
        MatchConditions {
            routes: strings(items),
            ..MatchConditions::default()
        }
    }

    fn domains(items: &[&str]) -> MatchConditions {
        MatchConditions {
            domains: strings(items),
            ..MatchConditions::default()
        }
    }

    fn services_only(items: &[&str]) -> MatchConditions {
        MatchConditions {
            services: strings(items),
            ..MatchConditions::default()
        }
    }

    fn prefixes(items: &[&str]) -> MatchConditions {
        MatchConditions {
            route_prefixes: strings(items),
            ..MatchConditions::default()
        }
    }

    fn build(
        rules: Vec<MatchConditions>,
        global: Option<&'static str>,
    ) -> RuleMatcher<&'static str> {
        const NAMES: [&str; 8] = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"];
        let specs = rules
            .into_iter()
            .enumerate()
            .map(|(i, conditions)| RuleSpec {
                conditions,
                description: format!("_rules_[{i}]"),
                config: NAMES.get(i).copied().unwrap_or("many"),
            })
            .collect();
        RuleMatcher::new(specs, global)
    }

    /// What `find` answered, as a comparable value.
    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Rule(usize, &'static str),
        Global(&'static str),
        Nothing,
    }

    fn find(
        m: &RuleMatcher<&'static str>,
        host: Option<&str>,
        route: Option<&str>,
        cluster: Option<&str>,
    ) -> Got {
        match m.find(host.map(str::as_bytes), route, cluster) {
            Matched::Rule { index, config } => Got::Rule(index, **config),
            Matched::Global(g) => Got::Global(**g),
            Matched::None => Got::Nothing,
        }
    }

    fn host(m: &RuleMatcher<&'static str>, h: &str) -> Got {
        find(m, Some(h), None, None)
    }

    /// The straightforward reference: scan every rule in order, as Go does.
    fn reference(
        rules: &[MatchConditions],
        host: Option<&str>,
        route: Option<&str>,
        cluster: Option<&str>,
    ) -> Option<usize> {
        let host = host.map(|h| strip_port(h.as_bytes()));
        let cluster = cluster.and_then(split_cluster);
        let route_eq = |c: &MatchConditions| route.is_some_and(|r| c.routes.iter().any(|x| x == r));
        let svc = |c: &MatchConditions| {
            cluster.is_some_and(|cl| c.services.iter().any(|s| ServiceEntry::new(s).matches(cl)))
        };
        rules.iter().position(|c| match c.category() {
            Some(Category::Route) => route_eq(c),
            Some(Category::RouteAndService) => route_eq(c) && svc(c),
            Some(Category::Host) => {
                host.is_some_and(|h| c.domains.iter().any(|d| HostPattern::parse(d).matches(h)))
            }
            Some(Category::Service) => svc(c),
            Some(Category::RoutePrefix) => {
                route.is_some_and(|r| c.route_prefixes.iter().any(|p| r.starts_with(p.as_str())))
            }
            None => false,
        })
    }

    #[test]
    fn heap_sort_sorts_and_exact_sort_keeps_the_first_rule() {
        // Every permutation-ish input of a small multiset, and a larger
        // pseudo-random one, against the standard sort.
        let mut seed = 0x2545_f491_u64;
        for len in 0..40usize {
            let mut items: Vec<u64> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed % 7
                })
                .collect();
            let mut want = items.clone();
            want.sort_unstable();
            heap_sort(&mut items, |a, b| a < b);
            assert_eq!(items, want, "len {len}");
        }
        let mut table: ExactTable = ["b", "a", "b", "c", "a", ""]
            .iter()
            .enumerate()
            .map(|(i, k)| (Box::from(*k), i))
            .collect();
        let mut inserted = ExactTable::new();
        for (k, i) in &table {
            exact_insert(&mut inserted, k, *i);
        }
        exact_sort(&mut table);
        assert_eq!(table, inserted);
        let keys: Vec<(&str, usize)> = table.iter().map(|(k, i)| (&**k, *i)).collect();
        assert_eq!(keys, [("", 5), ("a", 1), ("b", 0), ("c", 3)]);
    }

    #[test]
    fn category_precedence_follows_go() {
        let all = MatchConditions {
            routes: strings(&["r"]),
            domains: strings(&["d"]),
            services: strings(&["s"]),
            route_prefixes: strings(&["p"]),
        };
        assert_eq!(all.category(), Some(Category::RouteAndService));
        let no_service = MatchConditions {
            services: Vec::new(),
            ..all.clone()
        };
        assert_eq!(no_service.category(), Some(Category::Route));
        let domain_service_prefix = MatchConditions {
            routes: Vec::new(),
            ..all.clone()
        };
        assert_eq!(domain_service_prefix.category(), Some(Category::Host));
        let service_prefix = MatchConditions {
            routes: Vec::new(),
            domains: Vec::new(),
            ..all.clone()
        };
        assert_eq!(service_prefix.category(), Some(Category::Service));
        assert_eq!(prefixes(&["p"]).category(), Some(Category::RoutePrefix));
        assert_eq!(MatchConditions::default().category(), None);
    }

    #[test]
    fn strip_port_cases() {
        let cases: &[(&str, &str)] = &[
            ("a.com:80", "a.com"),
            ("a.com", "a.com"),
            ("a.com:", "a.com"),
            ("[::1]:8080", "[::1]"),
            ("[::1]", "[::1]"),
            ("[fe80::1%eth0]:443", "[fe80::1%eth0]"),
            ("::1", "::1"),
            ("fe80::1", "fe80::1"),
            ("1.2.3.4:9000", "1.2.3.4"),
            ("", ""),
            (":80", ""),
        ];
        for (input, want) in cases {
            assert_eq!(
                strip_port(input.as_bytes()),
                want.as_bytes(),
                "strip_port({input:?})"
            );
        }
    }

    #[test]
    fn host_patterns() {
        let m = build(
            vec![
                domains(&["*.example.com"]),
                domains(&["www.*"]),
                domains(&["exact.org"]),
                domains(&["a*b.net"]),
                domains(&["*foo*"]),
            ],
            None,
        );
        assert_eq!(host(&m, "api.example.com"), Got::Rule(0, "r0"));
        assert_eq!(host(&m, "api.example.com:8443"), Got::Rule(0, "r0"));
        // `*.example.com` does not match the bare domain.
        assert_eq!(host(&m, "example.com"), Got::Nothing);
        assert_eq!(host(&m, "www.anything.io"), Got::Rule(1, "r1"));
        assert_eq!(host(&m, "exact.org"), Got::Rule(2, "r2"));
        assert_eq!(host(&m, "exact.org:80"), Got::Rule(2, "r2"));
        assert_eq!(host(&m, "sub.exact.org"), Got::Nothing);
        // Case-sensitive.
        assert_eq!(host(&m, "EXACT.org"), Got::Nothing);
        assert_eq!(host(&m, "API.EXAMPLE.COM"), Got::Nothing);
        // A `*` in the middle is literal.
        assert_eq!(host(&m, "a*b.net"), Got::Rule(3, "r3"));
        assert_eq!(host(&m, "axb.net"), Got::Nothing);
        // `*foo*`: leading `*` wins, the trailing one is literal.
        assert_eq!(host(&m, "xfoo*"), Got::Rule(4, "r4"));
        assert_eq!(host(&m, "xfoox"), Got::Nothing);
        // No host: no domain rule can match.
        assert_eq!(find(&m, None, Some("r"), Some("c")), Got::Nothing);
    }

    #[test]
    fn star_alone_matches_every_host_and_config_ports_are_not_stripped() {
        let m = build(vec![domains(&["foo.com:8080"]), domains(&["*"])], Some("g"));
        assert_eq!(host(&m, "foo.com:8080"), Got::Rule(1, "r1"));
        assert_eq!(host(&m, "anything"), Got::Rule(1, "r1"));
        assert_eq!(host(&m, ""), Got::Rule(1, "r1"));
        assert_eq!(find(&m, None, None, None), Got::Global("g"));
    }

    #[test]
    fn ipv6_hosts() {
        let m = build(vec![domains(&["[::1]"]), domains(&["::1"])], None);
        assert_eq!(host(&m, "[::1]:8080"), Got::Rule(0, "r0"));
        assert_eq!(host(&m, "[::1]"), Got::Rule(0, "r0"));
        assert_eq!(host(&m, "::1"), Got::Rule(1, "r1"));
    }

    #[test]
    fn non_utf8_host_is_compared_bytewise() {
        let m = build(vec![domains(&["*.a.com"]), domains(&["b.*"])], None);
        let suffix: &[u8] = b"\xff\xfe.a.com:80";
        let prefix: &[u8] = b"b.\xff";
        assert!(matches!(
            m.find(Some(suffix), None, None),
            Matched::Rule { index: 0, .. }
        ));
        assert!(matches!(
            m.find(Some(prefix), None, None),
            Matched::Rule { index: 1, .. }
        ));
        assert!(matches!(m.find(Some(b"\xff"), None, None), Matched::None));
    }

    #[test]
    fn routes_exact_and_prefix() {
        let m = build(
            vec![routes(&["default/foo", "default/bar"]), prefixes(&["api-"])],
            None,
        );
        assert_eq!(
            find(&m, None, Some("default/foo"), None),
            Got::Rule(0, "r0")
        );
        assert_eq!(
            find(&m, None, Some("default/bar"), None),
            Got::Rule(0, "r0")
        );
        assert_eq!(find(&m, None, Some("default/foobar"), None), Got::Nothing);
        assert_eq!(find(&m, None, Some("api-v1"), None), Got::Rule(1, "r1"));
        assert_eq!(find(&m, None, Some("api-"), None), Got::Rule(1, "r1"));
        assert_eq!(find(&m, None, Some("v1-api-"), None), Got::Nothing);
        assert_eq!(find(&m, None, None, None), Got::Nothing);
    }

    #[test]
    fn services() {
        let m = build(
            vec![
                services_only(&["foo.default.svc.cluster.local:8080"]),
                services_only(&["bar.default.svc.cluster.local"]),
            ],
            Some("g"),
        );
        let foo = |port: &str| format!("outbound|{port}||foo.default.svc.cluster.local");
        assert_eq!(find(&m, None, None, Some(&foo("8080"))), Got::Rule(0, "r0"));
        assert_eq!(find(&m, None, None, Some(&foo("9090"))), Got::Global("g"));
        let bar = "outbound|1|v1|bar.default.svc.cluster.local";
        assert_eq!(find(&m, None, None, Some(bar)), Got::Rule(1, "r1"));
        // Not four parts: never matches.
        assert_eq!(
            find(&m, None, None, Some("bar.default.svc.cluster.local")),
            Got::Global("g")
        );
        let five = "outbound|1|v1|bar.default.svc.cluster.local|x";
        assert_eq!(find(&m, None, None, Some(five)), Got::Global("g"));
        assert_eq!(
            find(
                &m,
                None,
                None,
                Some("outbound|1|bar.default.svc.cluster.local")
            ),
            Got::Global("g")
        );
        // The direction part is not checked (as in Go).
        let inbound = "inbound|1||bar.default.svc.cluster.local";
        assert_eq!(find(&m, None, None, Some(inbound)), Got::Rule(1, "r1"));
        assert_eq!(find(&m, None, None, None), Got::Global("g"));
    }

    #[test]
    fn service_entry_edge_cases() {
        let parts = |c| split_cluster(c);
        let entry = ServiceEntry::new("svc:80");
        assert!(parts("outbound|80||svc").is_some_and(|c| entry.matches(c)));
        assert!(!parts("outbound|81||svc").is_some_and(|c| entry.matches(c)));
        // An entry that equals the whole FQDN matches even if it has a colon.
        assert!(parts("outbound|1||svc:80").is_some_and(|c| entry.matches(c)));
        // Empty port in the entry matches an empty port part.
        let empty_port = ServiceEntry::new("svc:");
        assert!(parts("outbound|||svc").is_some_and(|c| empty_port.matches(c)));
        assert_eq!(
            split_cluster("a|b|c|d"),
            Some(ClusterParts {
                port: "b",
                fqdn: "d"
            })
        );
        assert_eq!(split_cluster(""), None);
        assert_eq!(
            split_cluster("|||"),
            Some(ClusterParts { port: "", fqdn: "" })
        );
    }

    #[test]
    fn route_and_service_needs_both() {
        let m = build(
            vec![MatchConditions {
                routes: strings(&["r"]),
                services: strings(&["svc"]),
                ..MatchConditions::default()
            }],
            None,
        );
        let cluster = "outbound|80||svc";
        assert_eq!(find(&m, None, Some("r"), Some(cluster)), Got::Rule(0, "r0"));
        assert_eq!(find(&m, None, Some("r"), None), Got::Nothing);
        assert_eq!(find(&m, None, Some("other"), Some(cluster)), Got::Nothing);
        assert_eq!(find(&m, None, None, Some(cluster)), Got::Nothing);
        // A route-only lookup must not be served from the exact-route map.
        assert_eq!(
            find(&m, None, Some("r"), Some("outbound|80||nope")),
            Got::Nothing
        );
    }

    #[test]
    fn ignored_keys_follow_the_category() {
        // Route + domain: the category is Route, the domain is ignored.
        // Domain + service: the category is Host, the service is ignored.
        let m = build(
            vec![
                MatchConditions {
                    routes: strings(&["r"]),
                    domains: strings(&["*"]),
                    ..MatchConditions::default()
                },
                MatchConditions {
                    domains: strings(&["d.com"]),
                    services: strings(&["svc"]),
                    ..MatchConditions::default()
                },
            ],
            None,
        );
        assert_eq!(host(&m, "any.com"), Got::Nothing);
        assert_eq!(host(&m, "d.com"), Got::Rule(1, "r1"));
        assert_eq!(find(&m, None, None, Some("outbound|80||svc")), Got::Nothing);
        assert!(m.needs_host());
        assert!(m.needs_route());
        assert!(!m.needs_cluster());
    }

    #[test]
    fn first_rule_wins_over_later_exact_match() {
        let m = build(
            vec![
                domains(&["*.a.com"]),
                domains(&["www.a.com"]),
                routes(&["r"]),
                prefixes(&["r"]),
            ],
            None,
        );
        // The exact domain of rule 1 must not beat the wildcard of rule 0.
        assert_eq!(host(&m, "www.a.com"), Got::Rule(0, "r0"));
        // Route "r" matches rule 2 (exact) and rule 3 (prefix): 2 wins.
        assert_eq!(find(&m, None, Some("r"), None), Got::Rule(2, "r2"));
        assert_eq!(find(&m, None, Some("rx"), None), Got::Rule(3, "r3"));
        // Host and route both match: the lower index wins.
        assert_eq!(
            find(&m, Some("www.a.com"), Some("r"), None),
            Got::Rule(0, "r0")
        );
    }

    #[test]
    fn exact_before_wildcard_and_duplicates_keep_the_first_rule() {
        let m = build(
            vec![
                routes(&["r"]),
                domains(&["www.a.com"]),
                domains(&["*.a.com", "www.a.com"]),
                routes(&["r", "s"]),
                MatchConditions::default(),
            ],
            None,
        );
        assert_eq!(
            find(&m, Some("www.a.com"), Some("r"), None),
            Got::Rule(0, "r0")
        );
        assert_eq!(find(&m, Some("www.a.com"), None, None), Got::Rule(1, "r1"));
        assert_eq!(
            find(&m, Some("x.a.com"), Some("s"), None),
            Got::Rule(2, "r2")
        );
        assert_eq!(find(&m, None, Some("s"), None), Got::Rule(3, "r3"));
        // A rule without conditions (the parser rejects those) never matches.
        assert_eq!(find(&m, None, Some("zzz"), None), Got::Nothing);
        assert_eq!(m.rule_count(), 5);
        // The matcher takes conditions as given: an empty prefix (which the
        // config parser drops, as Go does) would match every route.
        let m = build(vec![prefixes(&[""])], None);
        assert_eq!(find(&m, None, Some("zzz"), None), Got::Rule(0, "r0"));
        assert_eq!(find(&m, None, None, None), Got::Nothing);
    }

    #[test]
    fn global_fallback_and_accessors() {
        let m = build(vec![routes(&["r"])], Some("g"));
        assert_eq!(find(&m, None, Some("x"), None), Got::Global("g"));
        assert_eq!(m.global().map(|g| **g), Some("g"));
        assert_eq!(m.rule_count(), 1);
        assert_eq!(m.describe_rule(0), Some("_rules_[0]"));
        assert_eq!(m.describe_rule(1), None);
        let none = build(Vec::new(), None);
        assert_eq!(find(&none, Some("h"), Some("r"), Some("c")), Got::Nothing);
        assert!(none.global().is_none());
        assert!(!none.needs_host() && !none.needs_route() && !none.needs_cluster());
        let global_only = build(Vec::new(), Some("g"));
        assert_eq!(find(&global_only, None, None, None), Got::Global("g"));
    }

    #[test]
    fn needs_flags() {
        assert!(build(vec![domains(&["a"])], None).needs_host());
        assert!(!build(vec![domains(&["a"])], None).needs_route());
        let svc = build(vec![services_only(&["s"])], None);
        assert!(svc.needs_cluster() && !svc.needs_route() && !svc.needs_host());
        let pre = build(vec![prefixes(&["p"])], None);
        assert!(pre.needs_route() && !pre.needs_cluster());
        let both = build(
            vec![MatchConditions {
                routes: strings(&["r"]),
                services: strings(&["s"]),
                ..MatchConditions::default()
            }],
            None,
        );
        assert!(both.needs_route() && both.needs_cluster() && !both.needs_host());
    }

    #[test]
    fn same_answer_as_an_in_order_scan() {
        let rules = vec![
            services_only(&["svc-a:80"]),
            domains(&["*.a.com", "b.com"]),
            routes(&["r1", "r2"]),
            domains(&["www.a.com", "c.*"]),
            prefixes(&["r"]),
            MatchConditions {
                routes: strings(&["r3"]),
                services: strings(&["svc-b"]),
                ..MatchConditions::default()
            },
            routes(&["r3", "x"]),
            domains(&["*"]),
        ];
        let m = build(rules.clone(), Some("g"));
        let hosts = [
            None,
            Some("www.a.com"),
            Some("b.com:1"),
            Some("c.io"),
            Some("zzz"),
            Some("a.com"),
        ];
        let route_names = [
            None,
            Some("r1"),
            Some("r3"),
            Some("x"),
            Some("rq"),
            Some("q"),
        ];
        let clusters = [
            None,
            Some("outbound|80||svc-a"),
            Some("outbound|81||svc-a"),
            Some("outbound|1||svc-b"),
            Some("svc-b"),
        ];
        for h in hosts {
            for r in route_names {
                for c in clusters {
                    let want = reference(&rules, h, r, c);
                    let got = match m.find(h.map(str::as_bytes), r, c) {
                        Matched::Rule { index, .. } => Some(index),
                        Matched::Global(_) => None,
                        Matched::None => Some(usize::MAX),
                    };
                    assert_eq!(got, want, "host={h:?} route={r:?} cluster={c:?}");
                }
            }
        }
    }
}
