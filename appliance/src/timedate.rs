//! systemd-timedated, through its command-line tool `timedatectl`: the system's time zone
//! and whether its clock is synchronised, and the changes the time zone worker makes
//! (the zone; the clock, once, when it is clearly wrong). One wrapper, typed arguments, an
//! explicit environment, and a time limit. The appliance's user may make these changes
//! only because the image's polkit rule lets it
//! (rootfs-overlay/usr/share/polkit-1/rules.d/50-d3kos.rules).

use std::time::Duration;

/// timedated starts on demand over D-Bus; a change waits for that and for polkit.
const LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimedateError {
    /// sd_booted(3): a container or a build host, where there is no timedated to ask.
    #[error("systemd is not running here: the system's time settings were left alone")]
    NotBooted,
    #[error("timedatectl could not run: {0}")]
    Spawn(String),
    #[error("timedatectl {args} took more than {} s", LIMIT.as_secs())]
    Timeout { args: String },
    #[error("timedatectl {args} failed ({status}): {stderr}")]
    Failed {
        args: String,
        status: String,
        stderr: String,
    },
}

/// What can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    /// The zone `/etc/localtime` points at.
    Timezone,
    /// Whether systemd-timesyncd has synchronised the clock (`yes`/`no`).
    NtpSynchronized,
}

impl Property {
    fn name(self) -> &'static str {
        match self {
            Property::Timezone => "Timezone",
            Property::NtpSynchronized => "NTPSynchronized",
        }
    }
}

/// What can be changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `set-timezone ZONE`: `/etc/localtime` points at it.
    Timezone(String),
    /// `set-ntp true|false`: systemd-timesyncd on or off (timedated refuses `set-time`
    /// while it is on).
    Ntp(bool),
    /// `set-time`, to the second.
    Time(jiff::Timestamp),
}

impl Change {
    fn args(&self) -> Vec<String> {
        match self {
            Change::Timezone(zone) => vec!["set-timezone".into(), zone.clone()],
            Change::Ntp(on) => vec!["set-ntp".into(), on.to_string()],
            // systemd.time(7): a time followed by "UTC" is read as UTC whatever the zone.
            Change::Time(t) => vec![
                "set-time".into(),
                t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
            ],
        }
    }
}

/// Runs `timedatectl ARGS` within the time limit: its output, or what went wrong with its
/// stderr.
async fn run(args: &[String]) -> Result<String, TimedateError> {
    if !crate::systemd::booted() {
        return Err(TimedateError::NotBooted);
    }
    let mut cmd = tokio::process::Command::new("timedatectl");
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .arg("--no-ask-password")
        .args(args)
        .kill_on_drop(true);
    log::debug!("running timedatectl --no-ask-password {args:?}");
    let joined = || args.join(" ");
    match tokio::time::timeout(LIMIT, cmd.output()).await {
        Ok(Ok(o)) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(Ok(o)) => Err(TimedateError::Failed {
            args: joined(),
            status: o.status.to_string(),
            stderr: String::from_utf8_lossy(&o.stderr).trim().to_owned(),
        }),
        Ok(Err(e)) => Err(TimedateError::Spawn(e.to_string())),
        Err(_) => Err(TimedateError::Timeout { args: joined() }),
    }
}

/// `timedatectl show -p PROPERTY --value`.
pub async fn show(p: Property) -> Result<String, TimedateError> {
    let args = ["show", "-p", p.name(), "--value"].map(String::from);
    run(&args).await.map(|s| s.trim().to_owned())
}

/// Makes `change`.
pub async fn set(change: &Change) -> Result<(), TimedateError> {
    run(&change.args()).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_the_command_lines_timedatectl_takes() {
        assert_eq!(
            Change::Timezone("Pacific/Auckland".into()).args(),
            ["set-timezone", "Pacific/Auckland"]
        );
        assert_eq!(Change::Ntp(false).args(), ["set-ntp", "false"]);
        let t: jiff::Timestamp = "2026-07-01T09:08:07.6Z".parse().unwrap();
        assert_eq!(
            Change::Time(t).args(),
            ["set-time", "2026-07-01 09:08:07 UTC"]
        );
    }

    #[tokio::test]
    async fn where_systemd_is_not_running_nothing_is_run() {
        if crate::systemd::booted() {
            eprintln!("skipped: systemd runs here");
            return;
        }
        assert_eq!(
            set(&Change::Timezone("UTC".into())).await,
            Err(TimedateError::NotBooted)
        );
        assert_eq!(
            show(Property::Timezone).await,
            Err(TimedateError::NotBooted)
        );
    }
}
