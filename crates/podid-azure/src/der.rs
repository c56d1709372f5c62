//! A minimal DER reader: just enough to find a certificate's subject public key (so a certificate file whose
//! key does not match is refused locally, with a clear message) and to tell a PKCS#12 file from PEM.
//!
//! Every read is bounds-checked and returns `None` on malformed input; nothing here panics.

/// ASN.1 SEQUENCE.
const TAG_SEQUENCE: u8 = 0x30;
/// ASN.1 INTEGER.
const TAG_INTEGER: u8 = 0x02;
/// ASN.1 BIT STRING.
const TAG_BIT_STRING: u8 = 0x03;
/// `[0]` constructed (the certificate's explicit version).
const TAG_CONTEXT_0: u8 = 0xa0;

/// One TLV: its tag, its contents, and the bytes after it.
pub(crate) fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = len.checked_mul(256)?.checked_add(usize::from(b))?;
        }
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let (content, after) = rest.split_at(len);
    Some((tag, content, after))
}

/// The contents of a TLV with the expected tag.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, content, after) = read_tlv(input)?;
    (t == tag).then_some((content, after))
}

/// The `subjectPublicKey` bits of an X.509 certificate (for RSA: the DER `RSAPublicKey`).
pub(crate) fn certificate_public_key(cert_der: &[u8]) -> Option<&[u8]> {
    let (cert, _) = expect(cert_der, TAG_SEQUENCE)?;
    let (tbs, _) = expect(cert, TAG_SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&TAG_CONTEXT_0) {
        rest = read_tlv(rest)?.2;
    }
    let (_, rest) = expect(rest, TAG_INTEGER)?; // serialNumber
    let (_, rest) = expect(rest, TAG_SEQUENCE)?; // signature
    let (_, rest) = expect(rest, TAG_SEQUENCE)?; // issuer
    let (_, rest) = expect(rest, TAG_SEQUENCE)?; // validity
    let (_, rest) = expect(rest, TAG_SEQUENCE)?; // subject
    let (spki, _) = expect(rest, TAG_SEQUENCE)?;
    let (_, rest) = expect(spki, TAG_SEQUENCE)?; // algorithm
    let (bits, _) = expect(rest, TAG_BIT_STRING)?;
    let (&unused, key) = bits.split_first()?;
    (unused == 0).then_some(key)
}

/// Whether bytes look like a PKCS#12 (PFX) file: a DER SEQUENCE starting with INTEGER version 3.
pub(crate) fn looks_like_pkcs12(bytes: &[u8]) -> bool {
    let Some((outer, _)) = expect(bytes, TAG_SEQUENCE) else {
        return false;
    };
    matches!(expect(outer, TAG_INTEGER), Some(([3], _)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        assert_eq!(
            read_tlv(&[0x04, 0x01, 0xaa, 0xbb]),
            Some((0x04, &[0xaa][..], &[0xbb][..]))
        );
        let mut long = vec![0x04, 0x82, 0x01, 0x00];
        long.extend(std::iter::repeat_n(7u8, 256));
        let (t, c, a) = read_tlv(&long).expect("long");
        assert_eq!((t, c.len(), a.len()), (0x04, 256, 0));
        assert_eq!(read_tlv(&[0x04, 0x05, 0x00]), None);
        assert_eq!(read_tlv(&[0x04, 0x80]), None);
        assert_eq!(read_tlv(&[0x04, 0x85, 1, 1, 1, 1, 1]), None);
        assert!(looks_like_pkcs12(&[0x30, 0x03, 0x02, 0x01, 0x03]));
        assert!(!looks_like_pkcs12(&[0x30, 0x03, 0x02, 0x01, 0x00]));
        assert!(!looks_like_pkcs12(b"-----BEGIN CERTIFICATE-----"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = read_tlv(&bytes);
            let _ = certificate_public_key(&bytes);
            let _ = looks_like_pkcs12(&bytes);
        }
    }
}
