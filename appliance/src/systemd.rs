//! systemd, through its command-line tool: the state of the system and of units for
//! /api/health and the healing rules, and the restarts those rules make. One wrapper,
//! typed arguments, an explicit environment, and a time limit.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitState {
    pub name: String,
    /// `active`, `failed`, … or `None` when systemd could not be asked.
    pub active_state: Option<String>,
    pub sub_state: Option<String>,
}

/// The whole system as systemd sees it: `running`, `degraded` (a unit failed), `starting`, …
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemState {
    pub state: String,
    pub failed_units: Vec<String>,
}

/// Runs `systemctl ARGS UNITS` within `limit`: its output, or what went wrong with its
/// stderr. `any_status` takes the output whatever the exit status, when there is some.
async fn run(
    args: &[&str],
    units: &[String],
    limit: Duration,
    any_status: bool,
) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new("systemctl");
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .args(args)
        .args(units)
        .kill_on_drop(true);
    log::debug!("running systemctl {args:?} {units:?}");
    match tokio::time::timeout(limit, cmd.output()).await {
        Ok(Ok(o)) if o.status.success() || (any_status && !o.stdout.is_empty()) => {
            Ok(String::from_utf8_lossy(&o.stdout).into_owned())
        }
        Ok(Ok(o)) => Err(format!(
            "systemctl {} {} failed ({}): {}",
            args.join(" "),
            units.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(Err(e)) => Err(format!("systemctl could not run: {e}")),
        Err(_) => Err(format!(
            "systemctl {} {} took more than {} s",
            args.join(" "),
            units.join(" "),
            limit.as_secs()
        )),
    }
}

/// Runs `systemctl ARGS`; `None` where systemd cannot be asked (a container, a build host)
/// or does not answer within 3 s. `systemctl is-system-running` exits non-zero unless the
/// state is `running`, so its output is taken whatever the status.
async fn systemctl(args: &[&str], units: &[String], any_status: bool) -> Option<String> {
    run(args, units, Duration::from_secs(3), any_status)
        .await
        .map_err(|e| log::debug!("{e}"))
        .ok()
}

/// When `unit` last became active, in µs of CLOCK_MONOTONIC (systemd's
/// `ActiveEnterTimestampMonotonic`); `None` when it is not active or systemd cannot be asked.
pub async fn active_since_us(unit: &str) -> Option<u64> {
    let args = [
        "show",
        "--no-pager",
        "--property=ActiveState,ActiveEnterTimestampMonotonic",
        "--",
    ];
    let text = systemctl(&args, &[unit.to_owned()], false).await?;
    let block = *blocks(&text).first()?;
    if property(block, "ActiveState")? != "active" {
        return None;
    }
    property(block, "ActiveEnterTimestampMonotonic")?
        .parse()
        .ok()
}

/// A watched unit as the healing rules see it: its state, how its last run ended, and how
/// often systemd has restarted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitDetail {
    pub name: String,
    pub active_state: Option<String>,
    pub sub_state: Option<String>,
    /// `success`, `exit-code`, `signal`, `start-limit-hit`, ...
    pub result: Option<String>,
    pub n_restarts: Option<u32>,
}

/// Asks systemd for `units` with their restart counts; `None` fields where it cannot.
pub async fn unit_details(units: &[String]) -> Vec<UnitDetail> {
    let args = [
        "show",
        "--no-pager",
        "--property=Id,ActiveState,SubState,Result,NRestarts",
        "--",
    ];
    let text = if units.is_empty() {
        None
    } else {
        systemctl(&args, units, false).await
    };
    let blocks = text.as_deref().map(blocks).unwrap_or_default();
    units
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let field = |key| blocks.get(i).and_then(|b| property(b, key));
            UnitDetail {
                name: name.clone(),
                active_state: field("ActiveState"),
                sub_state: field("SubState"),
                result: field("Result"),
                n_restarts: field("NRestarts").and_then(|n| n.parse().ok()),
            }
        })
        .collect()
}

/// What the healing rules may ask systemd to do with one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Forget a failure and restart: `reset-failed`, then `restart`.
    Restart,
    /// Start a one-shot unit and wait for it to finish.
    Start,
}

/// Runs `job` on `unit`, waiting up to `limit`. The appliance's user may do this only for
/// the units the image's polkit rule names (rootfs-overlay/usr/share/polkit-1/rules.d).
pub async fn job(job: Job, unit: &str, limit: Duration) -> Result<(), String> {
    if !booted() {
        return Err(format!(
            "systemd is not running here: {unit} was left alone"
        ));
    }
    let unit = [unit.to_owned()];
    match job {
        Job::Restart => {
            // A unit that hit its start limit refuses to restart until its failure is
            // forgotten.
            run(
                &["--no-ask-password", "reset-failed", "--"],
                &unit,
                limit,
                false,
            )
            .await?;
            run(&["--no-ask-password", "restart", "--"], &unit, limit, false)
                .await
                .map(drop)
        }
        Job::Start => run(&["--no-ask-password", "start", "--"], &unit, limit, false)
            .await
            .map(drop),
    }
}

/// Asks systemd for `units`; where systemd is not running every state is `None`.
pub async fn unit_states(units: &[String]) -> Vec<UnitState> {
    if units.is_empty() {
        return Vec::new();
    }
    let args = [
        "show",
        "--no-pager",
        "--property=Id,ActiveState,SubState",
        "--",
    ];
    match systemctl(&args, units, false).await {
        Some(text) => parse_show(&text, units),
        None => units
            .iter()
            .map(|u| UnitState {
                name: u.clone(),
                active_state: None,
                sub_state: None,
            })
            .collect(),
    }
}

/// Whether systemd is the init system (sd_booted(3): /run/systemd/system exists).
pub fn booted() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}

/// `systemctl stop|start UNITS`, waiting for the jobs, from blocking code (a restore).
/// Where systemd is not running there is nothing to stop or start, and that is no error.
pub fn change_units(verb: &'static str, units: &[String]) -> Result<(), String> {
    systemctl_blocking(&[verb], units)
}

/// `systemctl --no-block start UNITS`: queues the start and returns, for a unit's own
/// start job that must not wait on another's.
pub fn queue_start(units: &[String]) -> Result<(), String> {
    systemctl_blocking(&["--no-block", "start"], units)
}

/// `systemctl is-active UNIT`, from blocking code: whether the unit is active now.
pub fn is_active(unit: &str) -> bool {
    systemctl_blocking(&["is-active", "--quiet"], &[unit.to_owned()]).is_ok() && booted()
}

/// `systemctl is-failed UNIT`, from blocking code: whether systemd has given up on it.
pub fn is_failed(unit: &str) -> bool {
    systemctl_blocking(&["is-failed", "--quiet"], &[unit.to_owned()]).is_ok() && booted()
}

/// How often systemd has restarted `unit` since it was last started by hand (`NRestarts`).
pub fn restarts(unit: &str) -> Option<u32> {
    if !booted() {
        return None;
    }
    let out = systemctl_command()
        .args(["show", "--property=NRestarts", "--value", "--", unit])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// systemctl with a known environment, for blocking code.
fn systemctl_command() -> std::process::Command {
    let mut c = std::process::Command::new("systemctl");
    c.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C");
    c
}

fn systemctl_blocking(args: &[&str], units: &[String]) -> Result<(), String> {
    if units.is_empty() || !booted() {
        return Ok(());
    }
    let shown = args.join(" ");
    log::debug!("running systemctl {shown} {units:?}");
    let out = systemctl_command()
        .args(args)
        .arg("--")
        .args(units)
        .output()
        .map_err(|e| format!("systemctl {shown} could not run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "systemctl {shown} {} failed ({}): {}",
            units.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The system's state and its failed units; `None` where systemd cannot be asked.
pub async fn system_state() -> Option<SystemState> {
    let state = systemctl(&["is-system-running"], &[], true).await?;
    let failed = systemctl(
        &[
            "list-units",
            "--state=failed",
            "--plain",
            "--no-legend",
            "--no-pager",
        ],
        &[],
        false,
    )
    .await
    .unwrap_or_default();
    Some(SystemState {
        state: state.trim().to_owned(),
        failed_units: parse_failed(&failed),
    })
}

/// `systemctl list-units --plain --no-legend`: the unit is the first word of each line.
pub fn parse_failed(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// `systemctl show` prints one `Key=value` block per unit, blocks separated by blank lines,
/// in the order the units were named.
fn blocks(text: &str) -> Vec<&str> {
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .collect()
}

fn property(block: &str, key: &str) -> Option<String> {
    block
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .map(str::to_owned)
}

pub fn parse_show(text: &str, units: &[String]) -> Vec<UnitState> {
    let blocks = blocks(text);
    units
        .iter()
        .enumerate()
        .map(|(i, name)| UnitState {
            name: name.clone(),
            active_state: blocks.get(i).and_then(|b| property(b, "ActiveState")),
            sub_state: blocks.get(i).and_then(|b| property(b, "SubState")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_output_maps_to_units_in_order() {
        let text = "Id=d3kosd.service\nActiveState=active\nSubState=running\n\nId=nope.service\nActiveState=inactive\nSubState=dead\n";
        let s = parse_show(text, &["d3kosd.service".into(), "nope.service".into()]);
        assert_eq!(s[0].active_state.as_deref(), Some("active"));
        assert_eq!(s[1].sub_state.as_deref(), Some("dead"));
    }

    #[test]
    fn failed_units_are_the_first_word_of_each_line() {
        let text = "ssh.service loaded failed failed OpenBSD Secure Shell server
systemd-networkd-wait-online.service loaded failed failed Wait for Network
";
        assert_eq!(
            parse_failed(text),
            vec![
                "ssh.service".to_owned(),
                "systemd-networkd-wait-online.service".to_owned()
            ]
        );
        assert!(parse_failed("").is_empty());
    }
}
