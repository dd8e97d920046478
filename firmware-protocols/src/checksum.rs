//! The checksums the lane devices put on the wire (see docs/protocols.md#checksums).
//!
//! Names follow the reveng CRC catalogue; the `crc` crate carries the parameters. Each one is
//! unit-tested against its catalogue check value (the checksum of the ASCII bytes "123456789").

use crc::{CRC_16_GENIBUS, CRC_16_MCRF4XX, CRC_16_MODBUS, CRC_16_SPI_FUJITSU, Crc};

const MODBUS: Crc<u16> = Crc::<u16>::new(&CRC_16_MODBUS);
const MCRF4XX: Crc<u16> = Crc::<u16>::new(&CRC_16_MCRF4XX);
const GENIBUS: Crc<u16> = Crc::<u16>::new(&CRC_16_GENIBUS);
const SPI_FUJITSU: Crc<u16> = Crc::<u16>::new(&CRC_16_SPI_FUJITSU);

/// The UHF "0xA0" reader checksum: the 8-bit two's complement of the byte sum, so that the
/// bytes of a whole valid frame (checksum included) sum to 0 modulo 256.
pub fn uhf_check(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, b| sum.wrapping_add(*b))
        .wrapping_neg()
}

/// CRC-16/MODBUS: Modbus RTU and the lane screen; sent low byte first.
pub fn crc16_modbus(bytes: &[u8]) -> u16 {
    MODBUS.checksum(bytes)
}

/// CRC-16/MCRF4XX: Chafon CF-RU5xxx readers; sent low byte first.
pub fn crc16_mcrf4xx(bytes: &[u8]) -> u16 {
    MCRF4XX.checksum(bytes)
}

/// CRC-16/GENIBUS: the EPC Gen2 tag CRC over PC + EPC; sent high byte first.
pub fn crc16_genibus(bytes: &[u8]) -> u16 {
    GENIBUS.checksum(bytes)
}

/// CRC-16/SPI-FUJITSU (AUG-CCITT, init 0x1D0F): OSDP; sent low byte first.
pub fn crc16_spi_fujitsu(bytes: &[u8]) -> u16 {
    SPI_FUJITSU.checksum(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECK_INPUT: &[u8] = b"123456789";

    #[test]
    fn modbus_crc_matches_its_catalogue_check_value() {
        assert_eq!(crc16_modbus(CHECK_INPUT), 0x4B37);
    }

    #[test]
    fn mcrf4xx_crc_matches_its_catalogue_check_value() {
        assert_eq!(crc16_mcrf4xx(CHECK_INPUT), 0x6F91);
    }

    #[test]
    fn genibus_crc_matches_its_catalogue_check_value() {
        assert_eq!(crc16_genibus(CHECK_INPUT), 0xD64E);
    }

    #[test]
    fn spi_fujitsu_crc_matches_its_catalogue_check_value() {
        assert_eq!(crc16_spi_fujitsu(CHECK_INPUT), 0xE5CC);
    }

    #[test]
    fn uhf_check_makes_a_whole_frame_sum_to_zero() {
        // Real-time inventory, address 1, repeat 0xFF: A0 04 01 89 FF | D3
        // (docs/protocols.md#uhf-test-vectors).
        let body = [0xA0, 0x04, 0x01, 0x89, 0xFF];
        assert_eq!(uhf_check(&body), 0xD3);
        let sum = body
            .iter()
            .chain([0xD3].iter())
            .fold(0u8, |s, b| s.wrapping_add(*b));
        assert_eq!(sum, 0);
    }

    #[test]
    fn modbus_crc_matches_the_write_coil_vector() {
        // 01 05 00 00 FF 00 | 8C 3A: CRC 0x3A8C sent low byte first
        // (docs/protocols.md#modbus-test-vectors).
        assert_eq!(crc16_modbus(&[0x01, 0x05, 0x00, 0x00, 0xFF, 0x00]), 0x3A8C);
    }

    #[test]
    fn gen2_tag_crc_matches_the_captured_buffer_reply() {
        // PC 3000 + EPC E2003098881900722140369E → tag CRC 4D D4, as in the captured 0x90 reply
        // (docs/protocols.md#uhf-test-vectors).
        let pc_epc = [
            0x30, 0x00, 0xE2, 0x00, 0x30, 0x98, 0x88, 0x19, 0x00, 0x72, 0x21, 0x40, 0x36, 0x9E,
        ];
        let crc = crc16_genibus(&pc_epc);
        assert_eq!(crc.to_be_bytes(), [0x4D, 0xD4]);
    }
}
