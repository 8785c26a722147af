//! Runs contenders side by side: round-robin over contenders, several rounds, so that the noise
//! of a shared machine falls on all of them alike.
//!
//! Each round builds a contender afresh, measures it once and drops it before the next one is
//! built, so only one pool's threads exist at a time (this matters for the idle CPU figure of
//! the `wake` scenario). Each round starts one contender further along the list, so no
//! contender always runs first or last.

use anyhow::{Context, Result};

/// A named way to build one contender of type `C` (a trait object of the scenario's kind).
pub struct Entry<C: ?Sized> {
    name: &'static str,
    build: Box<dyn Fn() -> Result<Box<C>>>,
}

impl<C: ?Sized> Entry<C> {
    /// An entry named `name` (the name printed in tables and JSON) built by `build`.
    pub fn new(name: &'static str, build: impl Fn() -> Result<Box<C>> + 'static) -> Self {
        Entry {
            name,
            build: Box::new(build),
        }
    }

    /// The contender's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// Keeps the entries named in `only`, in their order; all of them if `only` is empty.
///
/// A name in `only` that matches no entry is an error naming it and the known names.
pub fn select<C: ?Sized>(entries: Vec<Entry<C>>, only: &[String]) -> Result<Vec<Entry<C>>> {
    let known: Vec<&str> = entries.iter().map(Entry::name).collect();
    if let Some(unknown) = only.iter().find(|name| !known.contains(&name.as_str())) {
        anyhow::bail!(
            "unknown contender `{unknown}`; this scenario has: {}",
            known.join(", ")
        );
    }
    if only.is_empty() {
        return Ok(entries);
    }
    Ok(entries
        .into_iter()
        .filter(|entry| only.iter().any(|name| name == entry.name))
        .collect())
}

/// The samples one contender produced, one per round, in round order.
pub struct Samples<S> {
    pub name: &'static str,
    pub samples: Vec<S>,
}

/// Measures every entry `rounds` times, interleaved, and returns their samples in entry order.
///
/// `measure` runs one round (its index is the second argument) against a freshly built
/// contender; `describe` turns its sample into
/// the progress line printed on stderr (stdout is kept for the results).
pub fn interleave<C: ?Sized, S>(
    entries: &[Entry<C>],
    rounds: u32,
    mut measure: impl FnMut(&mut C, usize) -> Result<S>,
    describe: impl Fn(&S) -> String,
) -> Result<Vec<Samples<S>>> {
    let mut results: Vec<Samples<S>> = entries
        .iter()
        .map(|entry| Samples {
            name: entry.name,
            samples: Vec::new(),
        })
        .collect();

    for round in 0..rounds as usize {
        for offset in 0..entries.len() {
            // Rotate the starting contender from one round to the next.
            let index = (round + offset) % entries.len();
            let entry = &entries[index];

            let mut contender =
                (entry.build)().with_context(|| format!("building contender `{}`", entry.name))?;
            let sample = measure(&mut *contender, round)
                .with_context(|| format!("measuring contender `{}`", entry.name))?;
            drop(contender);

            eprintln!(
                "round {}/{rounds}  {:<18} {}",
                round + 1,
                entry.name,
                describe(&sample)
            );
            results[index].samples.push(sample);
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Named {
        fn value(&self) -> u32;
    }

    struct Fixed(u32);

    impl Named for Fixed {
        fn value(&self) -> u32 {
            self.0
        }
    }

    fn entries() -> Vec<Entry<dyn Named>> {
        vec![
            Entry::new("a", || Ok(Box::new(Fixed(1)) as Box<dyn Named>)),
            Entry::new("b", || Ok(Box::new(Fixed(2)) as Box<dyn Named>)),
        ]
    }

    #[test]
    fn every_contender_gets_one_sample_per_round() {
        let results = interleave(&entries(), 3, |c, _| Ok(c.value()), |v| v.to_string()).unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].name, "a");
        assert_eq!(results[0].samples, vec![1, 1, 1]);
        assert_eq!(results[1].samples, vec![2, 2, 2]);
    }

    #[test]
    fn rounds_start_at_a_different_contender_each_time() {
        let mut order = Vec::new();
        interleave(
            &entries(),
            2,
            |c, _| {
                order.push(c.value());
                Ok(())
            },
            |_| String::new(),
        )
        .unwrap();
        assert_eq!(order, vec![1, 2, 2, 1]);
    }

    #[test]
    fn selecting_an_unknown_contender_names_it() {
        let err = select(entries(), &["nope".to_string()]).err().unwrap();
        assert!(err.to_string().contains("`nope`"));
    }

    #[test]
    fn selecting_keeps_only_the_named_contenders() {
        let kept = select(entries(), &["b".to_string()]).unwrap();
        let names: Vec<_> = kept.iter().map(Entry::name).collect();
        assert_eq!(names, vec!["b"]);
    }
}
