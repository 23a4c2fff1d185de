//! systemd, through its command-line tool: the state of units for /api/health. One wrapper,
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

/// Asks systemd for `units`; where systemd is not running (a container, a build host) every
/// state is `None`.
pub async fn unit_states(units: &[String]) -> Vec<UnitState> {
    let unknown = || {
        units
            .iter()
            .map(|u| UnitState {
                name: u.clone(),
                active_state: None,
                sub_state: None,
            })
            .collect()
    };
    if units.is_empty() {
        return Vec::new();
    }
    let mut cmd = tokio::process::Command::new("systemctl");
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .args([
            "show",
            "--no-pager",
            "--property=Id,ActiveState,SubState",
            "--",
        ])
        .args(units)
        .kill_on_drop(true);
    log::debug!("running systemctl show for {units:?}");
    let out = match tokio::time::timeout(Duration::from_secs(3), cmd.output()).await {
        Ok(Ok(o)) if o.status.success() => o,
        Ok(Ok(o)) => {
            log::debug!(
                "systemctl show failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return unknown();
        }
        Ok(Err(e)) => {
            log::debug!("systemctl: {e}");
            return unknown();
        }
        Err(_) => {
            log::warn!("systemctl show took more than 3 s");
            return unknown();
        }
    };
    parse_show(&String::from_utf8_lossy(&out.stdout), units)
}

/// `systemctl show` prints one `Key=value` block per unit, blocks separated by blank lines,
/// in the order the units were named.
pub fn parse_show(text: &str, units: &[String]) -> Vec<UnitState> {
    let blocks: Vec<&str> = text
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .collect();
    units
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let field = |key: &str| {
                blocks.get(i).and_then(|b| {
                    b.lines()
                        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                        .map(str::to_owned)
                })
            };
            UnitState {
                name: name.clone(),
                active_state: field("ActiveState"),
                sub_state: field("SubState"),
            }
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
}
