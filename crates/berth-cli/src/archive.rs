//! Archive transports (oci-archive:, docker-archive:) for `berth copy`.

use anyhow::bail;
use berth_transfer::Endpoint;

pub fn endpoint(s: &str) -> anyhow::Result<Endpoint> {
    bail!("`{s}`: archive transports are being wired in")
}
