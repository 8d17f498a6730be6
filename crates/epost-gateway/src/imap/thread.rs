//! THREAD and UID THREAD (RFC 5256): ORDEREDSUBJECT and REFERENCES over
//! the messages the SEARCH criteria pick. Both algorithms are pure
//! functions from the messages' [`Summary`]s (in mailbox order) to a
//! [`Forest`]; [`Forest::threads`] writes it as imap-types' threads.
//!
//! Every walk over a forest is iterative, so a reply chain as long as
//! the mailbox cannot exhaust the stack.

use std::collections::HashMap;
use std::num::NonZeroU32;

use imap_codec::imap_types::core::{Charset, Tag, Vec1, Vec2};
use imap_codec::imap_types::extensions::thread::{Thread, ThreadingAlgorithm};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::search::SearchKey;

use crate::backend::MailBackend;
use crate::imap::session::{Done, Gone, Session, Sink, bad, nonzero, ok};
use crate::imap::subject::{BaseSubject, base_subject, collation_key};
use crate::imap::summary::Summary;

impl<B: MailBackend> Session<B> {
    pub(crate) async fn thread<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        algorithm: ThreadingAlgorithm<'static>,
        charset: Charset<'static>,
        search: Vec1<SearchKey<'static>>,
        uid: bool,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let thread: fn(&[Summary]) -> Forest = match algorithm {
            ThreadingAlgorithm::OrderedSubject => ordered_subject,
            ThreadingAlgorithm::References => references,
            ThreadingAlgorithm::Other(other) => {
                let message = format!("unknown threading algorithm {}", other.as_ref());
                return Ok(Done::now(bad(&tag, &message)));
            }
        };
        let found = match self.matching(&tag, Some(&charset), search).await {
            Ok(found) => found,
            Err(done) => return Ok(done),
        };
        let (positions, summaries): (Vec<usize>, Vec<Summary>) =
            match self.summaries(&tag, &found, true).await {
                Ok(summaries) => summaries.into_iter().unzip(),
                Err(done) => return Ok(*done),
            };
        let numbers: Vec<NonZeroU32> =
            positions.iter().map(|&p| nonzero(self.number(p, uid))).collect();
        let threads = thread(&summaries).threads(&numbers);
        out.send(Response::Data(Data::Thread(threads))).await?;
        Ok(Done::now(ok(&tag, None, "THREAD completed")))
    }
}

/// Threads as a forest over the messages: each node a message (its index
/// among the summaries) or a dummy standing for one not there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Forest {
    nodes: Vec<Node>,
    roots: Vec<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    message: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

impl Forest {
    fn add(&mut self, message: Option<usize>) -> usize {
        self.nodes.push(Node { message, parent: None, children: Vec::new() });
        self.nodes.len() - 1
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    fn unlink(&mut self, child: usize) {
        if let Some(parent) = self.nodes[child].parent.take() {
            self.nodes[parent].children.retain(|&c| c != child);
        }
    }

    /// Whether making `child` a child of `parent` would make a loop:
    /// whether `child` is `parent` or above it. A node without children
    /// is above nothing, which keeps a long chain linear to build.
    fn would_loop(&self, child: usize, parent: usize) -> bool {
        if child == parent {
            return true;
        }
        if self.nodes[child].children.is_empty() {
            return false;
        }
        let ancestor = child;
        let mut at = Some(parent);
        while let Some(n) = at {
            if n == ancestor {
                return true;
            }
            at = self.nodes[n].parent;
        }
        false
    }

    fn is_dummy(&self, node: usize) -> bool {
        self.nodes[node].message.is_none()
    }

    /// The nodes under the roots, every node after its children.
    fn post_order(&self) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<(usize, bool)> = self.roots.iter().rev().map(|&r| (r, false)).collect();
        while let Some((node, expanded)) = stack.pop() {
            if expanded {
                order.push(node);
                continue;
            }
            stack.push((node, true));
            stack.extend(self.nodes[node].children.iter().rev().map(|&c| (c, false)));
        }
        order
    }

    /// The message a node is sorted and named by: its own, or a dummy's
    /// first child's.
    fn representative(&self, node: usize) -> Option<usize> {
        let mut at = node;
        loop {
            if let Some(message) = self.nodes[at].message {
                return Some(message);
            }
            at = *self.nodes[at].children.first()?;
        }
    }

    /// Sorts `list` by the sent date of each node's representative, then
    /// mailbox order.
    fn sort_by_date(&self, list: &mut [usize], items: &[Summary]) {
        list.sort_by_key(|&n| self.representative(n).map(|m| (items[m].sent, m)));
    }

    /// Every set of siblings (the roots too) sorted by date, the deepest
    /// first, so a dummy is placed by its first child as sorted.
    fn sort_all(&mut self, items: &[Summary]) {
        for node in self.post_order() {
            let mut children = std::mem::take(&mut self.nodes[node].children);
            self.sort_by_date(&mut children, items);
            self.nodes[node].children = children;
        }
        let mut roots = std::mem::take(&mut self.roots);
        self.sort_by_date(&mut roots, items);
        self.roots = roots;
    }

    /// The forest as imap-types threads, messages named by `numbers`
    /// (indexed like the summaries). A message with one child continues
    /// its chain (`(1 2 3)`); a dummy with one child is that child.
    pub(crate) fn threads(&self, numbers: &[NonZeroU32]) -> Vec<Thread> {
        enum Built {
            /// Numbers from the bottom up, and 0 or at least 2 answers.
            Chain(Vec<NonZeroU32>, Vec<Thread>),
            Nested(Vec<Thread>),
        }
        fn finish(built: Built) -> Option<Thread> {
            match built {
                Built::Chain(mut prefix, answers) => {
                    prefix.reverse();
                    Some(Thread::Members {
                        prefix: Vec1::try_from(prefix).ok()?,
                        answers: Vec2::try_from(answers).ok(),
                    })
                }
                Built::Nested(answers) => {
                    Some(Thread::Nested { answers: Vec2::try_from(answers).ok()? })
                }
            }
        }
        let mut built: Vec<Option<Built>> = (0..self.nodes.len()).map(|_| None).collect();
        for node in self.post_order() {
            let mut children: Vec<Built> =
                self.nodes[node].children.iter().filter_map(|&c| built[c].take()).collect();
            built[node] = match self.nodes[node].message {
                Some(message) => {
                    let Some(&number) = numbers.get(message) else { continue };
                    Some(match children.len() {
                        0 => Built::Chain(vec![number], Vec::new()),
                        1 => match children.pop() {
                            Some(Built::Chain(mut prefix, answers)) => {
                                prefix.push(number);
                                Built::Chain(prefix, answers)
                            }
                            Some(Built::Nested(answers)) => Built::Chain(vec![number], answers),
                            None => Built::Chain(vec![number], Vec::new()),
                        },
                        _ => Built::Chain(
                            vec![number],
                            children.into_iter().filter_map(finish).collect(),
                        ),
                    })
                }
                None => match children.len() {
                    0 => None,
                    1 => children.pop(),
                    _ => Some(Built::Nested(children.into_iter().filter_map(finish).collect())),
                },
            };
        }
        self.roots.iter().filter_map(|&r| built[r].take()).filter_map(finish).collect()
    }
}

/// THREAD=ORDEREDSUBJECT: messages grouped by base subject, each group a
/// thread of its earliest message with the others as its children, the
/// threads in the order of their first messages' dates.
pub(crate) fn ordered_subject(items: &[Summary]) -> Forest {
    let subjects: Vec<String> =
        items.iter().map(|s| collation_key(&base_subject(&s.subject).text)).collect();
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| (&subjects[a], items[a].sent, a).cmp(&(&subjects[b], items[b].sent, b)));
    let mut forest = Forest::default();
    let mut current: Option<(usize, usize)> = None;
    for index in order {
        match current {
            Some((root, first)) if subjects[first] == subjects[index] => {
                let child = forest.add(Some(index));
                forest.link(root, child);
            }
            _ => {
                let root = forest.add(Some(index));
                forest.roots.push(root);
                current = Some((root, index));
            }
        }
    }
    let mut roots = std::mem::take(&mut forest.roots);
    forest.sort_by_date(&mut roots, items);
    forest.roots = roots;
    forest
}

/// THREAD=REFERENCES (RFC 5256 section 3): parents by References (or
/// In-Reply-To), dummies for messages not there, pruned; then threads
/// whose roots share a base subject merged; siblings by date.
pub(crate) fn references(items: &[Summary]) -> Forest {
    let mut forest = Forest::default();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        // (1) The message's own node; a repeated Message-ID is as none.
        let own = match item.message_id.as_deref() {
            Some(id) => match by_id.get(id) {
                Some(&node) if forest.nodes[node].message.is_none() => node,
                Some(_) => forest.add(None),
                None => {
                    let node = forest.add(None);
                    by_id.insert(id, node);
                    node
                }
            },
            None => forest.add(None),
        };
        forest.nodes[own].message = Some(index);
        // (1A) The references linked in order, where that changes no
        // parent and makes no loop.
        let mut previous: Option<usize> = None;
        for id in &item.references {
            let node = match by_id.get(id.as_str()) {
                Some(&node) => node,
                None => {
                    let node = forest.add(None);
                    by_id.insert(id, node);
                    node
                }
            };
            if let Some(parent) = previous
                && forest.nodes[node].parent.is_none()
                && !forest.would_loop(node, parent)
            {
                forest.link(parent, node);
            }
            previous = Some(node);
        }
        // (1B) The message under its last reference: its own word wins.
        forest.unlink(own);
        if let Some(parent) = previous
            && !forest.would_loop(own, parent)
        {
            forest.link(parent, own);
        }
    }
    // (2) The root set.
    forest.roots = (0..forest.nodes.len()).filter(|&n| forest.nodes[n].parent.is_none()).collect();
    prune(&mut forest);
    // (5) Roots by date, a dummy by its first child.
    let roots_now = forest.roots.clone();
    for root in roots_now {
        if forest.is_dummy(root) {
            let mut children = std::mem::take(&mut forest.nodes[root].children);
            forest.sort_by_date(&mut children, items);
            forest.nodes[root].children = children;
        }
    }
    let mut roots = std::mem::take(&mut forest.roots);
    forest.sort_by_date(&mut roots, items);
    forest.roots = roots;
    let bases: Vec<BaseSubject> = items.iter().map(|s| base_subject(&s.subject)).collect();
    merge_subjects(&mut forest, &bases);
    // (7) Siblings by date, everywhere.
    forest.sort_all(items);
    forest
}

/// (4) Dummies without children go; a dummy's children take its place,
/// except that two or more children of a dummy root stay under it.
fn prune(forest: &mut Forest) {
    for node in forest.post_order() {
        let children = std::mem::take(&mut forest.nodes[node].children);
        let mut kept = Vec::with_capacity(children.len());
        for child in children {
            if forest.is_dummy(child) {
                let grandchildren = std::mem::take(&mut forest.nodes[child].children);
                for &g in &grandchildren {
                    forest.nodes[g].parent = Some(node);
                }
                kept.extend(grandchildren);
            } else {
                kept.push(child);
            }
        }
        forest.nodes[node].children = kept;
    }
    let roots = std::mem::take(&mut forest.roots);
    for root in roots {
        let children = forest.nodes[root].children.len();
        if !forest.is_dummy(root) || children >= 2 {
            forest.roots.push(root);
        } else if children == 1 {
            let child = forest.nodes[root].children[0];
            forest.nodes[root].children.clear();
            forest.nodes[child].parent = None;
            forest.roots.push(child);
        }
    }
}

/// (6) Roots with the same base subject become one thread.
fn merge_subjects(forest: &mut Forest, bases: &[BaseSubject]) {
    let subject = |forest: &Forest, node: usize| -> Option<String> {
        let base = &bases[forest.representative(node)?];
        (!base.text.is_empty()).then(|| collation_key(&base.text))
    };
    let reply = |forest: &Forest, node: usize| {
        forest.nodes[node].message.is_some_and(|m| bases[m].reply_or_forward)
    };
    // (6B) One root per subject: a dummy over a message, an original over
    // a reply.
    let mut table: HashMap<String, usize> = HashMap::new();
    for &root in &forest.roots {
        let Some(key) = subject(forest, root) else { continue };
        match table.get(&key) {
            None => {
                table.insert(key, root);
            }
            Some(&held) => {
                let better = forest.is_dummy(root) || (reply(forest, held) && !reply(forest, root));
                if !forest.is_dummy(held) && better {
                    table.insert(key, root);
                }
            }
        }
    }
    // (6C-E) Every other root with that subject joins the table's.
    let mut roots: Vec<Option<usize>> = forest.roots.iter().map(|&r| Some(r)).collect();
    let mut position: HashMap<usize, usize> =
        forest.roots.iter().enumerate().map(|(i, &r)| (r, i)).collect();
    for at in 0..roots.len() {
        let Some(root) = roots[at] else { continue };
        let Some(key) = subject(forest, root) else { continue };
        let Some(&held) = table.get(&key) else { continue };
        if held == root {
            continue;
        }
        roots[at] = None;
        match (forest.is_dummy(held), forest.is_dummy(root)) {
            (true, true) => {
                let children = std::mem::take(&mut forest.nodes[root].children);
                for child in children {
                    forest.link(held, child);
                }
            }
            (true, false) => forest.link(held, root),
            (false, false) if reply(forest, root) && !reply(forest, held) => {
                forest.link(held, root)
            }
            _ => {
                let dummy = forest.add(None);
                forest.link(dummy, held);
                forest.link(dummy, root);
                if let Some(&p) = position.get(&held) {
                    roots[p] = Some(dummy);
                    position.insert(dummy, p);
                }
                table.insert(key, dummy);
            }
        }
    }
    forest.roots = roots.into_iter().flatten().collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Account;
    use crate::imap::session::tests::{logged_in, run};
    use bytes::Bytes;

    /// A message: (Message-ID, References, subject, sent).
    fn item(id: &str, references: &str, subject: &str, sent: i64) -> Summary {
        Summary {
            sent,
            subject: subject.into(),
            message_id: (!id.is_empty()).then(|| id.to_owned()),
            references: references.split_whitespace().map(str::to_owned).collect(),
            ..Summary::default()
        }
    }

    fn render(forest: &Forest, count: usize) -> String {
        let numbers: Vec<NonZeroU32> = (1..=count as u32).map(nonzero).collect();
        forest.threads(&numbers).iter().map(ToString::to_string).collect()
    }

    fn thread(algorithm: fn(&[Summary]) -> Forest, items: &[Summary]) -> String {
        render(&algorithm(items), items.len())
    }

    #[test]
    fn references_link_parents_and_break_loops() {
        // Message 3 names 2 as its parent, 2 names 3's id as its own
        // parent's child: the later word wins and the loop is not made.
        let items =
            [item("a@b", "", "", 3), item("b@b", "a@b c@b", "", 1), item("c@b", "b@b", "", 2)];
        assert_eq!(thread(references, &items), "(3 2)(1)");
        assert_eq!(thread(references, &items[1..]), "(2 1)");
    }

    #[test]
    fn references_with_dummies_and_duplicates() {
        let cases: &[(&[Summary], &str)] = &[
            // Duplicate ids are threads of their own.
            (&[item("a@b", "", "", 1), item("a@b", "", "", 1)], "(1)(2)"),
            // ... merged by subject when one is a reply.
            (&[item("a@b", "", "foo", 1), item("a@b", "", "Re: foo", 2)], "(1 2)"),
            // A dummy root with one child is that child.
            (&[item("a@b", "", "foo", 1), item("b@b", "c@b", "Re: foo", 2)], "(1 2)"),
            // Two children of a missing message stay under a dummy.
            (&[item("", "a@b", "", 1), item("", "a@b", "", 2)], "((1)(2))"),
            (
                &[
                    item("1@b", "", "", 5),
                    item("2@b", "1@b", "", 1),
                    item("3@b", "1@b", "", 1),
                    item("4@b", "2@b", "", 1),
                ],
                "(1 (2 4)(3))",
            ),
            (&[item("3@b", "1@b", "", 1), item("4@b", "2@b", "", 1)], "(1)(2)"),
            (
                &[item("3@b", "1@b", "", 1), item("4@b", "2@b", "", 1), item("5@b", "2@b", "", 1)],
                "(1)((2)(3))",
            ),
            (
                &[
                    item("a@b", "", "", 1),
                    item("b@b", "a@b", "", 1),
                    item("c@b", "b@b", "", 1),
                    item("b@b", "a@b", "", 1),
                ],
                "(1 (2 3)(4))",
            ),
            // The first of two with one id is the one referred to.
            (
                &[item("a@b", "", "", 1), item("c@b", "b@b", "", 1), item("b@b", "a@b", "", 1)],
                "(1 3 2)",
            ),
            // A message naming itself is not its own parent.
            (&[item("a@b", "a@b", "", 1)], "(1)"),
        ];
        for (items, want) in cases {
            assert_eq!(thread(references, items), *want, "{items:?}");
        }
    }

    #[test]
    fn references_merge_by_subject() {
        // Two originals with one subject share a dummy; replies go under
        // the original.
        let items = [
            item("1@x", "", "Lunch", 1),
            item("2@x", "", "Re: Lunch", 2),
            item("3@x", "", "lunch", 3),
            item("4@x", "", "Other", 4),
        ];
        assert_eq!(thread(references, &items), "((1 2)(3))(4)");
        // The RFC 5256 ordering: roots by their first message's date.
        let items = [item("1@x", "", "b", 9), item("2@x", "", "a", 1), item("3@x", "1@x", "", 5)];
        assert_eq!(thread(references, &items), "(2)(1 3)");
    }

    #[test]
    fn ordered_subject_groups_and_orders() {
        let subjects = [
            "a",
            "C",
            "b",
            "_",
            "[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)",
            "b (a)",
            "Re: [FWD: c]",
            "[xyz]",
            "",
            " ",
            "Re: b",
            "RE: C",
            "Re: c",
            "Ad: Re: Ad: Re: Ad: x",
            "re: [fwd: [fwd: re: [fwd: babylon]]]",
        ];
        let items: Vec<Summary> = subjects.iter().map(|s| item("", "", s, 0)).collect();
        assert_eq!(
            thread(ordered_subject, &items),
            "(1)(2 (7)(12)(13))(3 (5)(11))(4)(6)(8)(9 10)(14)(15)"
        );
        let dated: Vec<Summary> = [10, 9, 8, 7, 30, 29, 28, 27]
            .iter()
            .enumerate()
            .map(|(i, &sent)| item("", "", if i % 2 == 0 { "a" } else { "b" }, sent))
            .collect();
        assert_eq!(thread(ordered_subject, &dated), "(4 (2)(8)(6))(3 (1)(7)(5))");
    }

    #[test]
    fn long_chains_do_not_recurse() {
        let count = 50_000;
        let items: Vec<Summary> = (0..count)
            .map(|i| {
                let parent = if i == 0 { String::new() } else { format!("{}@x", i - 1) };
                item(&format!("{i}@x"), &parent, "", i as i64)
            })
            .collect();
        let rendered = thread(references, &items);
        assert!(rendered.starts_with("(1 2 3 "), "{}", &rendered[..20]);
        assert!(rendered.ends_with(&format!(" {count})")));
    }

    #[tokio::test]
    async fn thread_answers() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        let messages = [
            "Message-ID: <a@x>\r\nSubject: plans\r\n\r\n1\r\n",
            "Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\nSubject: Re: plans\r\n\r\n2\r\n",
            "Message-ID: <c@x>\r\nSubject: other\r\n\r\n3\r\n",
        ];
        for (i, raw) in messages.iter().enumerate() {
            let date = 1_203_000_000_000 + i as u64 * 1000;
            account.append("INBOX", Bytes::from(*raw), vec![], Some(date)).await.unwrap();
        }
        run(&mut s, "a SELECT INBOX").await;
        let reply = run(&mut s, "b THREAD REFERENCES UTF-8 ALL").await;
        assert!(reply.starts_with("* THREAD (1 2)(3)\r\nb OK"), "{reply}");
        let reply = run(&mut s, "c UID THREAD ORDEREDSUBJECT UTF-8 NOT 3").await;
        assert!(reply.starts_with("* THREAD (1 2)\r\nc OK"), "{reply}");
        let reply = run(&mut s, "d THREAD REFERENCES UTF-8 1000").await;
        assert!(reply.starts_with("* THREAD\r\nd OK"), "{reply}");
        assert!(run(&mut s, "e THREAD X-NONE UTF-8 ALL").await.starts_with("e BAD"));
    }
}
