//! One CAN frame of NMEA 2000 and the ISO 11783 meaning of its 29-bit identifier.

/// The parts of a 29-bit identifier (ISO 11783-3 §5.2): 3 bits of priority, the data
/// page, the PDU format (PF), the PDU specific (PS) and the source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanId {
    pub prio: u8,
    pub pgn: u32,
    pub src: u8,
    pub dst: u8,
}

/// The broadcast address: a PDU2 message goes to everyone.
pub const BROADCAST: u8 = 255;

impl CanId {
    /// Splits an extended identifier. PF below 240 is PDU1: PS is the destination and
    /// not part of the PGN. From 240 up it is PDU2: PS is the PGN's low byte, the
    /// message is broadcast. The extended data page bit (bit 25) is 0 on NMEA 2000.
    pub fn parse(id: u32) -> CanId {
        let id = id & 0x1FFF_FFFF;
        let pf = (id >> 16) & 0xFF;
        let ps = ((id >> 8) & 0xFF) as u8;
        let dp = (id >> 24) & 1;
        let (pgn, dst) = if pf < 240 {
            ((dp << 16) | (pf << 8), ps)
        } else {
            ((dp << 16) | (pf << 8) | u32::from(ps), BROADCAST)
        };
        CanId {
            prio: ((id >> 26) & 7) as u8,
            pgn,
            src: (id & 0xFF) as u8,
            dst,
        }
    }

    /// The identifier that carries this PGN from `src` to `dst` at `prio`.
    pub fn raw(&self) -> u32 {
        let pf = (self.pgn >> 8) & 0xFF;
        let ps = if pf < 240 {
            u32::from(self.dst)
        } else {
            self.pgn & 0xFF
        };
        (u32::from(self.prio & 7) << 26)
            | (((self.pgn >> 16) & 1) << 24)
            | (pf << 16)
            | (ps << 8)
            | u32::from(self.src)
    }
}

/// A classic CAN frame with an extended identifier, as read from the bus or a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Milliseconds since the Unix epoch when it was seen; 0 when the capture had none.
    pub at_ms: i64,
    pub id: u32,
    pub len: u8,
    pub data: [u8; 8],
}

impl Frame {
    /// A frame of at most 8 bytes; `None` for a longer payload.
    pub fn new(at_ms: i64, id: u32, payload: &[u8]) -> Option<Frame> {
        if payload.len() > 8 {
            return None;
        }
        let mut data = [0xFF; 8];
        data[..payload.len()].copy_from_slice(payload);
        Some(Frame {
            at_ms,
            id,
            len: payload.len() as u8,
            data,
        })
    }

    pub fn payload(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }

    pub fn can_id(&self) -> CanId {
        CanId::parse(self.id)
    }
}

/// A whole NMEA 2000 message: a single frame's payload, a reassembled fast packet, or a
/// line of a capture that already joined them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub at_ms: i64,
    pub prio: u8,
    pub pgn: u32,
    pub src: u8,
    pub dst: u8,
    pub data: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdu2_ids_carry_the_pgn_low_byte_and_broadcast() {
        // 127489 engine parameters from source 1 at priority 2 (candump-fast.txt).
        let id = CanId::parse(0x09F2_0101);
        assert_eq!(
            id,
            CanId {
                prio: 2,
                pgn: 127_489,
                src: 1,
                dst: 255
            }
        );
        assert_eq!(id.raw(), 0x09F2_0101);
    }

    #[test]
    fn pdu1_ids_carry_a_destination_not_part_of_the_pgn() {
        // ISO request (59904) from 0xAC to 0xCC (candumpSample3.txt).
        let id = CanId::parse(0x18EA_CCAC);
        assert_eq!(
            id,
            CanId {
                prio: 6,
                pgn: 59_904,
                src: 0xAC,
                dst: 0xCC
            }
        );
        assert_eq!(id.raw(), 0x18EA_CCAC);
    }

    #[test]
    fn the_data_page_bit_reaches_the_pgn() {
        // 126208 group function is on data page 1.
        let id = CanId::parse(0x0DED_1203);
        assert_eq!(id.pgn, 0x1ED00);
        assert_eq!(id.dst, 0x12);
    }

    #[test]
    fn frames_longer_than_eight_bytes_are_refused() {
        assert!(Frame::new(0, 1, &[0; 9]).is_none());
        let f = Frame::new(5, 1, &[1, 2, 3]).unwrap();
        assert_eq!(f.payload(), &[1, 2, 3]);
    }
}
