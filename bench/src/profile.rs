//! Profiles: which phases a run has, and the load shape of each.

use std::time::Duration;

use clap::ValueEnum;

use crate::flows::Flow;

/// The original's stages: to 10 users over 1 min, hold 5 min, then 25, 50 and
/// 100 the same way (24 min). Users stop at once at the end.
const ORIGINAL_PLAN: &str = "10,1m;10,5m;25,1m;25,5m;50,1m;50,5m;100,1m;100,5m;0,0s";
/// The same stages compressed twelvefold (2 min).
const QUICK_PLAN: &str = "10,5s;10,25s;25,5s;25,25s;50,5s;50,25s;100,5s;100,25s;0,0s";
/// A few users for long enough that each runs all nine weighted slots once:
/// nine sleeps of at most 3 s fit in the hold.
const SMOKE_PLAN: &str = "4,1s;4,28s;0,0s";

/// The climb's levels of users, each reached in 30 s from none and held
/// 1 min, as the k6 `climb` profile climbs.
pub const CLIMB_LEVELS: [usize; 6] = [100, 500, 1_000, 2_000, 3_000, 5_000];

/// The climb's shape: `--climb-levels`, `--climb-ramp`, `--climb-hold`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClimbPlan {
    pub levels: Vec<usize>,
    pub ramp_seconds: u64,
    pub hold_seconds: u64,
}

impl Default for ClimbPlan {
    fn default() -> Self {
        Self {
            levels: CLIMB_LEVELS.to_vec(),
            ramp_seconds: 30,
            hold_seconds: 60,
        }
    }
}

/// The original's think time between scenarios.
const THINK: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(3));

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The original load test as it was: 10/25/50/100 users, 24 min.
    Original,
    /// The original's shape compressed to about 2 min.
    Quick,
    /// Closed loops without sleeps: the mix, then catalogue list, order
    /// drafts and login each alone.
    Max,
    /// A few users for half a minute, loose thresholds: for CI.
    Smoke,
    /// Password guessing, credential stuffing and a flood against the
    /// shipped limits (src/abuse/); no goose phases.
    Abuse,
    /// The original mix from one address at 100 to 5,000 users against the
    /// shipped wemaster.toml, a load balancer polling the probes beside.
    Climb,
}

/// One goose run against the server.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Short name: file names, CSV metric prefixes, JSON keys.
    pub key: String,
    /// What it is, in words, for the summary.
    pub title: String,
    pub flow: Flow,
    pub shape: Shape,
}

/// How many users, for how long.
#[derive(Debug, Clone)]
pub enum Shape {
    /// A goose test plan ("users,time;..."). Figures cover the whole plan,
    /// ramps included, as k6 reports a staged run.
    Plan(&'static str),
    /// All users started within a second, then held; figures cover the hold
    /// only (goose resets its metrics once every user runs).
    Steady { users: usize, seconds: u64 },
    /// Users started evenly over `ramp` seconds, then held `hold` seconds;
    /// figures cover the hold only.
    Ramp { users: usize, ramp: u64, hold: u64 },
}

impl Shape {
    pub fn goose_args(&self) -> Vec<String> {
        match self {
            Shape::Plan(plan) => vec!["--test-plan".into(), (*plan).into()],
            Shape::Steady { users, seconds } => vec![
                "--users".into(),
                users.to_string(),
                "--increase-rate".into(),
                users.to_string(),
                "--run-time".into(),
                format!("{seconds}s"),
            ],
            Shape::Ramp { users, ramp, hold } => vec![
                "--users".into(),
                users.to_string(),
                "--increase-rate".into(),
                format!("{:.3}", *users as f64 / (*ramp).max(1) as f64),
                "--run-time".into(),
                format!("{hold}s"),
            ],
        }
    }

    /// Whether the figures start when the hold starts rather than at the start.
    pub fn measured_from_hold(&self) -> bool {
        matches!(self, Shape::Steady { .. } | Shape::Ramp { .. })
    }

    /// About how long it runs, for the progress line.
    pub fn approx_seconds(&self) -> u64 {
        match self {
            Shape::Plan(plan) => plan
                .split(';')
                .filter_map(|step| step.split(',').nth(1))
                .map(step_seconds)
                .sum(),
            Shape::Steady { seconds, .. } => seconds + 1,
            Shape::Ramp { ramp, hold, .. } => ramp + hold,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Shape::Plan(plan) => format!("test plan {plan}"),
            Shape::Steady { users, seconds } => {
                format!("{users} users, closed loop, {seconds} s after a 1 s ramp")
            }
            Shape::Ramp { users, ramp, hold } => {
                format!("{users} users started over {ramp} s, then held {hold} s")
            }
        }
    }
}

fn step_seconds(span: &str) -> u64 {
    let span = span.trim();
    let (number, unit) = span.split_at(span.len().saturating_sub(1));
    let number: u64 = number.parse().unwrap_or(0);
    match unit {
        "m" => number * 60,
        "h" => number * 3600,
        _ => number,
    }
}

/// One phase per level of the climb: the original mix with its sleeps.
pub fn climb_phases(plan: &ClimbPlan) -> impl Iterator<Item = Phase> + use<'_> {
    plan.levels.iter().map(|&users| Phase {
        key: format!("climb-{users}"),
        title: format!("the original mix at {users} users, 1-3 s sleeps"),
        flow: Flow::Mix { sleep: Some(THINK) },
        shape: Shape::Ramp {
            users,
            ramp: plan.ramp_seconds,
            hold: plan.hold_seconds,
        },
    })
}

impl Profile {
    /// The phases of this profile, the `/livez` ceiling last. `closed_users`
    /// is the concurrency of every closed loop, the ceiling's included;
    /// `climb` the climb's levels.
    pub fn phases(self, closed_users: usize, climb: &ClimbPlan) -> Vec<Phase> {
        let paced_mix = |plan: &'static str| Phase {
            key: "mix".into(),
            title: "the original mix, 1-3 s sleeps".into(),
            flow: Flow::Mix { sleep: Some(THINK) },
            shape: Shape::Plan(plan),
        };
        let closed = |key: &str, title: &str, flow, seconds| Phase {
            key: key.into(),
            title: title.into(),
            flow,
            shape: Shape::Steady {
                users: closed_users,
                seconds,
            },
        };
        let ceiling = |seconds| {
            closed(
                "ceiling",
                "GET /livez, the framework ceiling",
                Flow::Livez,
                seconds,
            )
        };
        match self {
            Profile::Original => vec![paced_mix(ORIGINAL_PLAN), ceiling(30)],
            Profile::Quick => vec![paced_mix(QUICK_PLAN), ceiling(15)],
            Profile::Smoke => vec![paced_mix(SMOKE_PLAN), ceiling(3)],
            // Its attacks are sequences of requests, not goose phases.
            Profile::Abuse => Vec::new(),
            Profile::Climb => climb_phases(climb).chain([ceiling(15)]).collect(),
            // Drafts of variants with a capacity first: the mix pays orders,
            // which fills the demo classes.
            Profile::Max => vec![
                closed(
                    "max-order-limited",
                    "POST /api/v1/orders/draft alone, of variants with a capacity",
                    Flow::OrderDraftLimited,
                    15,
                ),
                closed(
                    "max-order-unlimited",
                    "POST /api/v1/orders/draft alone, of variants without one",
                    Flow::OrderDraftUnlimited,
                    15,
                ),
                closed(
                    "max-mix",
                    "the original mix, no sleeps",
                    Flow::Mix { sleep: None },
                    20,
                ),
                closed(
                    "max-catalogue",
                    "GET /api/v1/offerings alone (cached catalogue list)",
                    Flow::CatalogueList,
                    15,
                ),
                closed(
                    "max-order",
                    "POST /api/v1/orders/draft alone",
                    Flow::OrderDraft,
                    15,
                ),
                closed(
                    "max-login",
                    "POST /api/v1/auth/login alone",
                    Flow::Login,
                    15,
                ),
                ceiling(15),
            ],
        }
    }

    /// A closed loop from a few dozen addresses is not honest traffic: the
    /// limiter would be what `max` measured, so `max` always runs without it.
    pub fn forces_limits_off(self) -> bool {
        self == Profile::Max
    }

    /// Whether the server runs the shipped wemaster.toml rather than the
    /// bench's configuration: the climb measures the defaults users get.
    pub fn runs_shipped_config(self) -> bool {
        self == Profile::Climb
    }

    pub fn name(self) -> &'static str {
        match self {
            Profile::Original => "original",
            Profile::Quick => "quick",
            Profile::Max => "max",
            Profile::Smoke => "smoke",
            Profile::Abuse => "abuse",
            Profile::Climb => "climb",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_runs_24_minutes_and_quick_two() {
        assert_eq!(Shape::Plan(ORIGINAL_PLAN).approx_seconds(), 24 * 60);
        assert_eq!(Shape::Plan(QUICK_PLAN).approx_seconds(), 120);
    }

    #[test]
    fn every_profile_ends_with_the_ceiling_at_the_closed_loop_concurrency() {
        for profile in [
            Profile::Original,
            Profile::Quick,
            Profile::Max,
            Profile::Smoke,
            Profile::Climb,
        ] {
            let phases = profile.phases(32, &ClimbPlan::default());
            let last = phases.last().expect("a profile has phases");
            assert_eq!(last.key, "ceiling");
            assert!(matches!(last.shape, Shape::Steady { users: 32, .. }));
        }
    }

    #[test]
    fn the_climb_starts_its_users_over_the_ramp_and_measures_the_hold() {
        let phases = Profile::Climb.phases(32, &ClimbPlan::default());
        assert_eq!(phases.len(), CLIMB_LEVELS.len() + 1);
        let top = &phases[CLIMB_LEVELS.len() - 1];
        assert_eq!(top.key, "climb-5000");
        assert!(top.shape.measured_from_hold());
        assert_eq!(
            top.shape.goose_args(),
            [
                "--users",
                "5000",
                "--increase-rate",
                "166.667",
                "--run-time",
                "60s"
            ]
        );
        assert_eq!(top.shape.approx_seconds(), 90);
    }
}
