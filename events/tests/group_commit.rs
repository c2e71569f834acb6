//! The group committer against both buses: many matches committing tick after tick
//! through one committer (rounds of many batches), one of them fenced out by another
//! writer mid-way; a commit whose earlier attempt already landed; a cancelled match.

mod common;

use common::Ctx;
use events::commit::Commit;
use events::group_commit::{GroupCommitter, MatchCommits};
use events::{Append, Bus, IdSpec, StreamId};
use tokio_util::sync::CancellationToken;

const MATCHES: usize = 24;
const TICKS: u64 = 30;
/// The match another writer takes over, and the tick it writes first.
const STOLEN: usize = 7;
const STOLEN_AT: u64 = 12;

fn at(stream: &str, tick: u64, payload: Vec<u8>, maxlen: Option<usize>) -> Append {
    Append {
        stream: stream.to_string(),
        id: IdSpec::Explicit(StreamId::for_tick(tick)),
        payload,
        maxlen,
    }
}

fn tick_payload(m: usize, tick: u64) -> Vec<u8> {
    format!("match {m} tick {tick}").into_bytes()
}

/// One match's loop as the engine runs it: submit tick n, settle it while "stepping"
/// tick n+1, stop at the first commit that is not written.
async fn play<B: Bus>(
    bus: B,
    committer: GroupCommitter,
    prefix: String,
    m: usize,
) -> (u64, Commit) {
    let (tick_key, view_key) = (format!("{prefix}:m{m}:tick"), format!("{prefix}:m{m}:view"));
    let mut commits = MatchCommits::new(committer, CancellationToken::new());
    let mut last = Commit::Written;
    let mut written = 0;
    for tick in 1..=TICKS + 1 {
        if let Some(done) = commits.settle().await.expect("settle") {
            last = done.commit;
            if done.commit != Commit::Written {
                break;
            }
            written = tick - 1;
        }
        if tick > TICKS {
            break;
        }
        if m == STOLEN && tick == STOLEN_AT {
            // Another owner commits this tick first (and its view frame).
            bus.append(
                &tick_key,
                IdSpec::Explicit(StreamId::for_tick(tick)),
                b"the new owner",
                None,
            )
            .await
            .expect("steal");
        }
        commits.submit(
            std::time::Instant::now(),
            vec![
                at(&tick_key, tick, tick_payload(m, tick), None),
                at(
                    &view_key,
                    tick,
                    format!("view {tick}").into_bytes(),
                    Some(1_000),
                ),
            ],
        );
        tokio::task::yield_now().await;
    }
    (written, last)
}

async fn many_matches_one_fenced<B: Bus>(cx: &Ctx<B>) {
    let committer = GroupCommitter::start(cx.bus.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for m in 0..MATCHES {
        tasks.spawn(play(
            cx.bus.clone(),
            committer.clone(),
            cx.prefix.clone(),
            m,
        ));
    }
    let mut results = Vec::new();
    while let Some(r) = tasks.join_next().await {
        results.push(r.expect("match task"));
    }
    let fenced = results.iter().filter(|r| r.1 == Commit::Fenced).count();
    assert_eq!(fenced, 1, "exactly the stolen match is fenced: {results:?}");
    assert!(results.contains(&(STOLEN_AT - 1, Commit::Fenced)));
    for m in 0..MATCHES {
        let ticks = cx
            .bus
            .range(
                &cx.key(&format!("m{m}:tick")),
                StreamId::ZERO,
                StreamId::MAX,
                100,
            )
            .await
            .unwrap();
        let views = cx
            .bus
            .range(
                &cx.key(&format!("m{m}:view")),
                StreamId::ZERO,
                StreamId::MAX,
                100,
            )
            .await
            .unwrap();
        let ids: Vec<u64> = ticks.iter().map(|e| e.id.tick()).collect();
        let view_ids: Vec<u64> = views.iter().map(|e| e.id.tick()).collect();
        if m == STOLEN {
            // Ours up to the tick before the steal, then the new owner's; no view frame
            // of ours for the refused tick or after it.
            assert_eq!(ids, (1..=STOLEN_AT).collect::<Vec<_>>());
            assert_eq!(ticks.last().unwrap().payload, b"the new owner");
            assert_eq!(view_ids, (1..STOLEN_AT).collect::<Vec<_>>());
        } else {
            assert_eq!(ids, (1..=TICKS).collect::<Vec<_>>(), "match {m}");
            assert_eq!(view_ids, ids, "match {m}: a view frame per tick");
            for e in &ticks {
                assert_eq!(e.payload, tick_payload(m, e.id.tick()));
            }
        }
    }
}

async fn a_commit_that_already_landed_is_written<B: Bus>(cx: &Ctx<B>) {
    let committer = GroupCommitter::start(cx.bus.clone());
    let cancel = CancellationToken::new();
    let (tick, view) = (cx.key("tick"), cx.key("view"));
    let batch = vec![
        at(&tick, 1, b"t1".to_vec(), None),
        at(&view, 1, b"v1".to_vec(), None),
    ];
    let first = committer.commit(batch.clone(), &cancel).await.unwrap();
    assert_eq!((first.commit, first.complete), (Commit::Written, true));
    // The same bytes again (an attempt whose answer was lost): written, not fenced.
    let again = committer.commit(batch, &cancel).await.unwrap();
    assert_eq!((again.commit, again.complete), (Commit::Written, false));
    // Other bytes for the same tick: fenced.
    let other = committer
        .commit(vec![at(&tick, 1, b"t1'".to_vec(), None)], &cancel)
        .await
        .unwrap();
    assert_eq!(other.commit, Commit::Fenced);
    // The commit is new but its view frame was already written (by a previous owner):
    // the commit is written, the batch incomplete.
    cx.bus
        .append(&view, IdSpec::Explicit(StreamId::for_tick(2)), b"old", None)
        .await
        .unwrap();
    let kept = committer
        .commit(
            vec![
                at(&tick, 2, b"t2".to_vec(), None),
                at(&view, 2, b"v2".to_vec(), None),
            ],
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!((kept.commit, kept.complete), (Commit::Written, false));
    assert_eq!(cx.bus.len(&tick).await.unwrap(), 2);
}

async fn a_cancelled_match_commits_nothing<B: Bus>(cx: &Ctx<B>) {
    let committer = GroupCommitter::start(cx.bus.clone());
    let cancel = CancellationToken::new();
    cancel.cancel();
    let tick = cx.key("tick");
    let c = committer
        .commit(vec![at(&tick, 1, b"t1".to_vec(), None)], &cancel)
        .await
        .unwrap();
    assert_eq!(c.commit, Commit::Cancelled);
    assert_eq!(cx.bus.len(&tick).await.unwrap(), 0);
}

bus_tests!(
    many_matches_one_fenced,
    a_commit_that_already_landed_is_written,
    a_cancelled_match_commits_nothing,
);
