//! The demo's plate cameras: one per lane, alternating the two push kinds, reading the plate of
//! each simulated car a moment after it stops — sometimes with low confidence, sometimes misread
//! by a character, and for a "cloned" tag the plate of the car really there.
//!
//! Delivery: as on a site, each read is the real push (multipart or JSON, built by
//! [`crate::sim::camera`]) posted to the gate's camera listener, which [`serve_listener`] serves.
//!
//! Photos are small (a 320×180 scene) so the demo's CPU stays low. It never decides anything.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::domain::{Direction, PlateColour};
use crate::gate::config::GateConfig;
use crate::gate::runtime::GateHandle;
use crate::sim::camera::{self, CameraKind, PlateShot, ShotImages};
use crate::sim::plate_image::{plate_jpeg, scene_picture};

/// The cameras' minimum confidence (gate.toml's default): below it a read never opens alone.
pub(super) const MIN_CONFIDENCE: u8 = 80;

/// One lane's camera.
#[derive(Debug)]
pub(super) struct DemoCamera {
    /// Its name in gate.toml.
    pub name: String,
    pub kind: CameraKind,
    pub lane: &'static str,
    /// The gate's camera listener, when posting over HTTP.
    pub listener: Option<SocketAddr>,
    next_event: AtomicU64,
    client: reqwest::Client,
}

impl DemoCamera {
    pub(super) fn new(
        gate_no: i64,
        lane: &'static str,
        kind: CameraKind,
        listener: Option<SocketAddr>,
    ) -> DemoCamera {
        DemoCamera {
            name: format!("gate{gate_no}-{lane}"),
            kind,
            lane,
            listener,
            // Event ids a later run does not repeat (the camera's event-id de-duplication).
            next_event: AtomicU64::new(chrono::Utc::now().timestamp_millis() as u64 * 1000),
            client: camera::client(Duration::from_secs(10)),
        }
    }

    /// The camera's `[[camera]]` table for gate.toml.
    pub(super) fn toml(&self) -> String {
        format!(
            "\n[[camera]]\nname = \"{}\"\nkind = \"{}\"\nlane = \"{}\"\nmin_confidence = {MIN_CONFIDENCE}\n",
            self.name,
            self.kind.as_str(),
            self.lane
        )
    }

    /// Reads `plate` (as the camera saw it) and pushes the read to the gate's listener.
    pub(super) async fn read(
        &self,
        plate: &str,
        colour: PlateColour,
        confidence: u8,
        direction: Direction,
    ) -> anyhow::Result<()> {
        let shot = PlateShot {
            plate: plate.to_string(),
            colour,
            confidence,
            event_id: self.next_event.fetch_add(1, Ordering::Relaxed),
            channel: 1,
            direction: Some(direction),
            at: chrono::Utc::now(),
        };
        let caption = self.name.clone();
        let images = {
            let shot = shot.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<ShotImages> {
                let scene =
                    scene_picture(&shot.plate, shot.colour, &caption, 320, 180, shot.event_id)?
                        .jpeg(70)?;
                Ok(ShotImages {
                    plate: plate_jpeg(&shot.plate, shot.colour)?,
                    scene,
                })
            })
            .await??
        };
        let listener = self.listener.context("the gate has no camera listener")?;
        let payload = camera::payload(self.kind, &shot, &images);
        camera::post(
            &self.client,
            &camera::camera_url(&format!("http://{listener}"), &self.name),
            &payload,
        )
        .await?;
        Ok(())
    }
}

/// The gate's `[camera_listener]` table, when cameras post over HTTP.
pub(super) fn listener_toml(listener: SocketAddr) -> String {
    format!("\n[camera_listener]\nlisten = \"{listener}\"\n")
}

/// Serves the gate's camera listener on `listener` until `stop`.
pub(super) async fn serve_listener(
    listener: tokio::net::TcpListener,
    gate: Arc<GateHandle>,
    config: &GateConfig,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let router = crate::gate::camera_http::router(gate, config);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop.cancelled_owned())
    .await
    .context("serving the camera listener")
}

/// The camera's view of a plate: mostly right, sometimes unsure, now and then a character off.
pub(super) fn as_seen(plate: &str, roll: u64, digit: u64) -> (String, u8) {
    match roll {
        // A misread at a confidence that still looks fine: a character taken for its look-alike
        // (what recognition usually gets wrong), else one serial digit wrong.
        0..=3 => {
            const LOOK_ALIKES: [(char, char); 10] = [
                ('8', 'B'),
                ('B', '8'),
                ('0', 'D'),
                ('D', '0'),
                ('5', 'S'),
                ('S', '5'),
                ('2', 'Z'),
                ('Z', '2'),
                ('6', 'G'),
                ('G', '6'),
            ];
            let mut chars: Vec<char> = plate.chars().collect();
            let serial = chars.iter_mut().skip(2).rev();
            if let Some((c, alike)) = serial
                .filter_map(|c| {
                    let alike = LOOK_ALIKES.iter().find(|(from, _)| from == c)?.1;
                    Some((c, alike))
                })
                .next()
            {
                *c = alike;
            } else if let Some(c) = chars.iter_mut().rev().find(|c| c.is_ascii_digit()) {
                *c = char::from_digit(
                    (c.to_digit(10).unwrap_or(0) + 1 + digit as u32 % 8) % 10,
                    10,
                )
                .unwrap_or('0');
            }
            (chars.into_iter().collect(), 88)
        }
        // Dirt, glare, a bent plate: low confidence, the guard decides.
        4..=9 => (plate.to_string(), 55 + (digit % 20) as u8),
        _ => (plate.to_string(), 90 + (digit % 10) as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_camera_mostly_reads_right_sometimes_unsure_and_sometimes_takes_a_look_alike_or_a_digit_off()
     {
        assert_eq!(as_seen("京A12345", 50, 3), ("京A12345".to_string(), 93));
        let (text, confidence) = as_seen("京A12345", 5, 3);
        assert_eq!(text, "京A12345");
        assert!(confidence < MIN_CONFIDENCE);
        assert_eq!(as_seen("京A12345", 0, 3).0, "京A1234S", "a look-alike");
        let (text, confidence) = as_seen("京A13479", 0, 3);
        assert_ne!(text, "京A13479", "no look-alike: a digit off");
        assert_eq!(text.chars().count(), 7);
        assert!(confidence >= MIN_CONFIDENCE);
    }
}
