//! The subscription index the broker routes with: [`TopicTree`], a trie of topic filters.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

use sansmq::packet::QoS;
use sansmq::{TopicFilter, TopicName};

/// Subscriptions indexed level by level, so that finding who gets a message costs what the
/// topic's levels and the matching subscriptions cost, not what every subscription costs.
///
/// Each subscription is a filter, a subscriber key `K` (the broker uses client ids) and the
/// granted QoS. A filter's levels are a path from the root; `+` is a child of its own and a final
/// `#` is kept on the node it follows, so a topic is matched by walking its levels once, taking at
/// each node the literal child and the `+` child, and the `#` subscribers of every node passed
/// (`a/#` matches `a` too). Unsubscribing prunes the nodes nothing needs any more.
///
/// ```
/// use sansmq::packet::QoS;
/// use sansmq::{TopicFilter, TopicName};
/// use sansmq_broker::TopicTree;
///
/// let mut tree = TopicTree::new();
/// let filter = |f| TopicFilter::try_from(f).unwrap();
/// tree.insert(&filter("sensors/+/temp"), "a", QoS::AtLeastOnce);
/// tree.insert(&filter("sensors/#"), "a", QoS::AtMostOnce);
/// tree.insert(&filter("#"), "b", QoS::ExactlyOnce);
///
/// // One entry per subscriber, at the highest QoS of its matching subscriptions.
/// let mut found = tree.subscribers(&TopicName::try_from("sensors/kitchen/temp").unwrap());
/// found.sort();
/// assert_eq!(found, [(&"a", QoS::AtLeastOnce), (&"b", QoS::ExactlyOnce)]);
///
/// // MQTT-4.7.2-1: a wildcard first level does not match a `$` topic.
/// assert!(tree.subscribers(&TopicName::try_from("$SYS/uptime").unwrap()).is_empty());
/// ```
#[derive(Debug)]
pub struct TopicTree<K> {
    root: Node<K>,
    len: usize,
}

/// One level of the tree: the filters that go on from here, and the subscriptions whose filter
/// ends here.
struct Node<K> {
    /// Children by literal level (never `+` or `#`).
    literal: HashMap<Box<str>, Node<K>>,
    /// The `+` child.
    any_level: Option<Box<Node<K>>>,
    /// Subscriptions whose filter is the path to this node.
    exact: HashMap<K, QoS>,
    /// Subscriptions whose filter is the path to this node followed by `#`.
    and_below: HashMap<K, QoS>,
}

/// A step from a node to one of its children.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    Literal(&'a str),
    AnyLevel,
}

impl<K> Default for Node<K> {
    fn default() -> Self {
        Self {
            literal: HashMap::new(),
            any_level: None,
            exact: HashMap::new(),
            and_below: HashMap::new(),
        }
    }
}

/// Drops the subtree level by level rather than recursively: with the topic limits off a filter
/// may be 65 536 levels deep (65 535 `/`), and a recursive drop of such a path would overflow the
/// broker thread's stack. Inserting, matching and pruning walk the tree with loops for the same
/// reason.
impl<K> Drop for Node<K> {
    fn drop(&mut self) {
        let mut orphans = self.take_children();
        while let Some(mut node) = orphans.pop() {
            orphans.append(&mut node.take_children());
            // `node` drops here with no children left.
        }
    }
}

/// Shows a node and the names of its children, not their subtrees: formatting must not recurse
/// per level any more than dropping does.
impl<K: fmt::Debug> fmt::Debug for Node<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("literal", &self.literal.keys().collect::<Vec<_>>())
            .field("any_level", &self.any_level.is_some())
            .field("exact", &self.exact)
            .field("and_below", &self.and_below)
            .finish()
    }
}

impl<K> Node<K> {
    /// Detaches every child, leaving this node a leaf.
    fn take_children(&mut self) -> Vec<Self> {
        let mut children: Vec<Self> = self.literal.drain().map(|(_, child)| child).collect();
        children.extend(self.any_level.take().map(|child| *child));
        children
    }

    fn child(&self, step: Step<'_>) -> Option<&Self> {
        match step {
            Step::Literal(level) => self.literal.get(level),
            Step::AnyLevel => self.any_level.as_deref(),
        }
    }

    fn child_mut(&mut self, step: Step<'_>) -> Option<&mut Self> {
        match step {
            Step::Literal(level) => self.literal.get_mut(level),
            Step::AnyLevel => self.any_level.as_deref_mut(),
        }
    }

    fn child_or_insert(&mut self, step: Step<'_>) -> &mut Self {
        match step {
            Step::Literal(level) => self.literal.entry(level.into()).or_default(),
            Step::AnyLevel => self.any_level.get_or_insert_with(Box::default),
        }
    }

    fn remove_child(&mut self, step: Step<'_>) {
        match step {
            Step::Literal(level) => {
                self.literal.remove(level);
            }
            Step::AnyLevel => self.any_level = None,
        }
    }

    fn descend_mut(&mut self, steps: &[Step<'_>]) -> Option<&mut Self> {
        steps
            .iter()
            .try_fold(self, |node, &step| node.child_mut(step))
    }

    fn children(&self) -> usize {
        self.literal.len() + usize::from(self.any_level.is_some())
    }

    fn has_subscriptions(&self) -> bool {
        !self.exact.is_empty() || !self.and_below.is_empty()
    }

    fn is_empty(&self) -> bool {
        !self.has_subscriptions() && self.children() == 0
    }
}

/// A filter as the steps to its node, and whether it ends with `#`.
fn steps(filter: &TopicFilter) -> (Vec<Step<'_>>, bool) {
    let mut steps: Vec<Step<'_>> = filter
        .as_str()
        .split('/')
        .map(|level| match level {
            "+" => Step::AnyLevel,
            level => Step::Literal(level),
        })
        .collect();
    // MQTT-4.7.1-2: `#` can only be the last level (a valid `TopicFilter` guarantees it).
    let and_below = matches!(steps.last(), Some(Step::Literal("#")));
    if and_below {
        steps.pop();
    }
    (steps, and_below)
}

impl<K> Default for TopicTree<K> {
    fn default() -> Self {
        Self {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<K: Eq + Hash> TopicTree<K> {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many subscriptions (filter and key pairs) the tree holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tree holds no subscription.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Subscribes `key` to `filter` at `qos`, replacing the QoS of the same key's subscription to
    /// the same filter (MQTT-3.8.4-3), which is returned.
    pub fn insert(&mut self, filter: &TopicFilter, key: K, qos: QoS) -> Option<QoS> {
        let (steps, and_below) = steps(filter);
        let node = steps
            .iter()
            .fold(&mut self.root, |node, &step| node.child_or_insert(step));
        let subscriptions = match and_below {
            true => &mut node.and_below,
            false => &mut node.exact,
        };
        let replaced = subscriptions.insert(key, qos);
        if replaced.is_none() {
            self.len += 1;
        }
        replaced
    }

    /// Removes `key`'s subscription to `filter` and returns its QoS, or `None` if there was none.
    /// Nodes left with no subscription and no child are removed.
    pub fn remove<Q>(&mut self, filter: &TopicFilter, key: &Q) -> Option<QoS>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let (steps, and_below) = steps(filter);
        let node = self.root.descend_mut(&steps)?;
        let subscriptions = match and_below {
            true => &mut node.and_below,
            false => &mut node.exact,
        };
        let removed = subscriptions.remove(key)?;
        self.len -= 1;
        self.prune(&steps);
        Some(removed)
    }

    /// Removes the end of the path `steps` that holds nothing but the path itself.
    fn prune(&mut self, steps: &[Step<'_>]) {
        // The deepest node on the path that stays: the root, or one with a subscription or a
        // child off the path. Everything below it on the path goes if the last node is empty.
        let mut keep = 0;
        let mut node = &self.root;
        for (depth, &step) in steps.iter().enumerate() {
            if node.has_subscriptions() || node.children() > 1 {
                keep = depth;
            }
            match node.child(step) {
                Some(child) => node = child,
                None => return,
            }
        }
        if !node.is_empty() {
            return;
        }
        let (Some(kept), Some(&first_removed)) = (steps.get(..keep), steps.get(keep)) else {
            return;
        };
        if let Some(parent) = self.root.descend_mut(kept) {
            parent.remove_child(first_removed);
        }
    }

    /// Calls `found` with every subscription whose filter matches `topic` (MQTT 3.1.1 section
    /// 4.7), once per subscription: a key subscribed with several matching filters comes once
    /// for each. The cost is the nodes visited, at most one per matching filter prefix.
    pub fn for_each_match<'a>(&'a self, topic: &TopicName, mut found: impl FnMut(&'a K, QoS)) {
        // MQTT-4.7.2-1: filters starting with a wildcard do not match topics starting with `$`.
        let dollar = topic.as_bytes().first() == Some(&b'$');
        let mut pending = vec![(&self.root, topic.levels(), true)];
        while let Some((node, mut levels, at_root)) = pending.pop() {
            let wildcards = !(at_root && dollar);
            if wildcards {
                // MQTT-4.7.1-2: `#` matches the parent level and any number of levels below.
                node.and_below
                    .iter()
                    .for_each(|(key, &qos)| found(key, qos));
            }
            match levels.next() {
                None => node.exact.iter().for_each(|(key, &qos)| found(key, qos)),
                Some(level) => {
                    if let Some(child) = node.literal.get(level) {
                        pending.push((child, levels.clone(), false));
                    }
                    // MQTT-4.7.1-3: `+` matches exactly one level, which may be empty.
                    if let (true, Some(child)) = (wildcards, &node.any_level) {
                        pending.push((child, levels, false));
                    }
                }
            }
        }
    }

    /// The keys with a subscription matching `topic`, each once, at the highest QoS of its
    /// matching subscriptions (MQTT-3.3.5-1: overlapping subscriptions get one copy). In no
    /// particular order.
    pub fn subscribers(&self, topic: &TopicName) -> Vec<(&K, QoS)> {
        let mut found = Vec::new();
        self.for_each_match(topic, |key, qos| found.push((key, qos)));
        if found.len() < 2 {
            return found;
        }
        let mut highest: HashMap<&K, QoS> = HashMap::with_capacity(found.len());
        for (key, qos) in found {
            let entry = highest.entry(key).or_insert(qos);
            *entry = (*entry).max(qos);
        }
        highest.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn filter(f: &str) -> TopicFilter {
        TopicFilter::try_from(f).unwrap()
    }

    fn topic(t: &str) -> TopicName {
        TopicName::try_from(t).unwrap()
    }

    fn sorted<K: Ord + Copy>(found: Vec<(&K, QoS)>) -> Vec<(K, QoS)> {
        let mut found: Vec<(K, QoS)> = found.into_iter().map(|(k, q)| (*k, q)).collect();
        found.sort();
        found
    }

    #[test]
    fn multi_level_wildcard_matches_its_parent_and_every_level_below() {
        let mut tree = TopicTree::new();
        tree.insert(&filter("a/#"), 1, QoS::AtMostOnce);
        for t in ["a", "a/", "a/b", "a/b/c"] {
            assert_eq!(
                sorted(tree.subscribers(&topic(t))),
                [(1, QoS::AtMostOnce)],
                "{t}"
            );
        }
        assert!(tree.subscribers(&topic("b")).is_empty());
        assert!(tree.subscribers(&topic("ab")).is_empty());
    }

    #[test]
    fn single_level_wildcard_matches_one_possibly_empty_level() {
        let mut tree = TopicTree::new();
        tree.insert(&filter("a/+"), 1, QoS::AtMostOnce);
        tree.insert(&filter("+/+"), 2, QoS::AtMostOnce);
        assert_eq!(sorted(tree.subscribers(&topic("a/"))).len(), 2);
        assert_eq!(sorted(tree.subscribers(&topic("/finance"))).len(), 1);
        assert!(tree.subscribers(&topic("a")).is_empty());
        assert!(tree.subscribers(&topic("a/b/c")).is_empty());
    }

    #[test]
    fn dollar_topics_escape_first_level_wildcards_only() {
        let mut tree = TopicTree::new();
        tree.insert(&filter("#"), 1, QoS::AtMostOnce);
        tree.insert(&filter("+/uptime"), 2, QoS::AtMostOnce);
        tree.insert(&filter("$SYS/#"), 3, QoS::AtMostOnce);
        tree.insert(&filter("$SYS/+"), 4, QoS::AtMostOnce);
        let found = sorted(tree.subscribers(&topic("$SYS/uptime")));
        assert_eq!(found, [(3, QoS::AtMostOnce), (4, QoS::AtMostOnce)]);
        assert_eq!(sorted(tree.subscribers(&topic("x/uptime"))).len(), 2);
    }

    #[test]
    fn overlapping_subscriptions_give_one_entry_at_the_highest_qos() {
        let mut tree = TopicTree::new();
        tree.insert(&filter("a/+"), 1, QoS::AtMostOnce);
        tree.insert(&filter("a/#"), 1, QoS::ExactlyOnce);
        tree.insert(&filter("a/b"), 1, QoS::AtLeastOnce);
        let t = topic("a/b");
        assert_eq!(sorted(tree.subscribers(&t)), [(1, QoS::ExactlyOnce)]);
        assert_eq!(
            tree.insert(&filter("a/#"), 1, QoS::AtMostOnce),
            Some(QoS::ExactlyOnce)
        );
        assert_eq!(tree.len(), 3);
        assert_eq!(sorted(tree.subscribers(&t)), [(1, QoS::AtLeastOnce)]);
    }

    #[test]
    fn removing_the_last_subscriptions_prunes_every_node() {
        let mut tree = TopicTree::new();
        let filters = ["a/b/c", "a/b", "a/+/c/#", "#", "+", "a/b/c/d/e", "/", "x/#"];
        for (key, f) in filters.iter().enumerate() {
            tree.insert(&filter(f), key, QoS::AtLeastOnce);
        }
        assert_eq!(tree.remove(&filter("a/b/c"), &7), None);
        for (key, f) in filters.iter().enumerate() {
            assert_eq!(tree.remove(&filter(f), &key), Some(QoS::AtLeastOnce), "{f}");
            assert_eq!(tree.remove(&filter(f), &key), None, "{f}");
        }
        assert!(tree.is_empty());
        assert!(tree.root.is_empty(), "{:?}", tree.root);
    }

    #[test]
    fn pruning_keeps_the_nodes_other_filters_go_through() {
        let mut tree = TopicTree::new();
        tree.insert(&filter("a/b/c/d"), 1, QoS::AtMostOnce);
        tree.insert(&filter("a/b"), 2, QoS::AtMostOnce);
        tree.insert(&filter("a/x"), 3, QoS::AtMostOnce);
        tree.remove(&filter("a/b/c/d"), &1);
        let b = &tree.root.literal["a"].literal["b"];
        assert!(b.literal.is_empty() && b.exact.len() == 1);
        tree.remove(&filter("a/b"), &2);
        assert_eq!(tree.root.literal["a"].children(), 1);
        assert_eq!(
            sorted(tree.subscribers(&topic("a/x"))),
            [(3, QoS::AtMostOnce)]
        );
    }

    #[test]
    fn the_deepest_filter_mqtt_allows_is_routed_removed_and_dropped_without_recursion() {
        // 65 535 bytes, the longest MQTT string: 65 536 empty levels, the deepest possible path.
        let deepest = "/".repeat(65_535);
        let plus = format!("{}#", "+/".repeat(32_767));
        // A small stack, like a thread that would overflow if any of these recursed per level.
        let on_small_stack = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut tree = TopicTree::new();
                tree.insert(&filter(&deepest), 1, QoS::AtLeastOnce);
                tree.insert(&filter(&plus), 2, QoS::AtMostOnce);
                assert_eq!(
                    sorted(tree.subscribers(&topic(&deepest))),
                    [(1, QoS::AtLeastOnce), (2, QoS::AtMostOnce)]
                );
                assert_eq!(tree.remove(&filter(&deepest), &1), Some(QoS::AtLeastOnce));
                tree.insert(&filter(&deepest), 3, QoS::AtMostOnce);
                assert!(format!("{tree:?}").contains("len: 2"));
                drop(tree);
            })
            .unwrap();
        on_small_stack.join().unwrap();
    }

    /// Levels drawn from a few values (including empty and `$`), so that random filters and
    /// topics often match.
    fn level() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["a", "b", "", "$s"])
    }

    fn filter_strategy() -> impl Strategy<Value = TopicFilter> {
        let level_or_plus = prop_oneof![3 => level(), 1 => Just("+")];
        // A lone empty level is not a filter (MQTT-4.7.3-1).
        let levels = (prop::collection::vec(level_or_plus, 1..5), any::<bool>()).prop_filter_map(
            "empty filter",
            |(levels, hash)| {
                let text = levels.join("/");
                TopicFilter::try_from(if hash { text + "/#" } else { text }.as_str()).ok()
            },
        );
        prop_oneof![1 => Just(filter("#")), 9 => levels]
    }

    fn topic_strategy() -> impl Strategy<Value = TopicName> {
        prop::collection::vec(level(), 1..6).prop_filter_map("empty topic", |levels| {
            TopicName::try_from(levels.join("/").as_str()).ok()
        })
    }

    fn qos() -> impl Strategy<Value = QoS> {
        prop::sample::select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
    }

    /// What the tree must answer: every subscription tried with `TopicFilter::matches`.
    fn linear(subscriptions: &BTreeMap<(u8, TopicFilter), QoS>, t: &TopicName) -> Vec<(u8, QoS)> {
        let mut highest: BTreeMap<u8, QoS> = BTreeMap::new();
        for ((key, f), &qos) in subscriptions {
            if f.matches(t) {
                let entry = highest.entry(*key).or_insert(qos);
                *entry = (*entry).max(qos);
            }
        }
        highest.into_iter().collect()
    }

    proptest! {
        #[test]
        fn the_tree_matches_like_every_filter_tried_in_turn(
            subscribed in prop::collection::vec((0u8..6, filter_strategy(), qos()), 0..40),
            removed in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
            topics in prop::collection::vec(topic_strategy(), 1..20),
        ) {
            let mut tree = TopicTree::new();
            let mut model = BTreeMap::new();
            for (key, f, qos) in &subscribed {
                prop_assert_eq!(tree.insert(f, *key, *qos), model.insert((*key, f.clone()), *qos));
            }
            for index in removed.iter().filter(|_| !subscribed.is_empty()) {
                let (key, f, _) = index.get(&subscribed);
                prop_assert_eq!(tree.remove(f, key), model.remove(&(*key, f.clone())));
            }
            prop_assert_eq!(tree.len(), model.len());
            for t in &topics {
                prop_assert_eq!(sorted(tree.subscribers(t)), linear(&model, t), "topic {}", t.as_str());
            }
            for (key, f) in model.keys() {
                prop_assert!(tree.remove(f, key).is_some());
            }
            prop_assert!(tree.root.is_empty());
        }
    }
}
