//! The site PKI: one certificate authority per site, which issues the central server's TLS
//! certificates and one client certificate per gate. Gates and the centre authenticate each
//! other with these over mutual TLS ([`crate::tls`]).
//!
//! Layout of a PKI directory (created 0700):
//!
//! | file | what |
//! |---|---|
//! | `ca.crt`, `ca.key` | the site CA (ECDSA P-256, 20 years); the key signs everything else |
//! | `server-<name>.crt/.key` | a server certificate: DNS/IP SANs, EKU serverAuth only |
//! | `gate-<id>.crt/.key` | a gate's client certificate: URI SAN `urn:gatehouse:gate:<id>`, CN `gate-<id>`, EKU clientAuth only |
//! | `pass-keys/pass-<kid>.p8/.toml` | the visitor-pass signing keys (Ed25519, `pass_key`) |
//!
//! A gate's identity is the URI SAN of its certificate and nothing else ([`gate_id_from_cert`]).
//!
//! What it never does: print, log or return a private key (keys go straight to their files, which
//! are 0600 and written atomically: a temporary file in the same directory, synced, then
//! renamed); overwrite an existing CA; talk to the network or a database; parse command lines
//! (that is `src/cli/pki.rs`).

mod pass_key;

pub use pass_key::{
    DEFAULT_OVERLAP_DAYS, PASS_KEY_DIR, PassKeyFile, PassKeyMeta, current as current_pass_key,
    list_pass_keys, new_pass_key, pass_key_dir, read_key_pair, rotate_pass_key,
};

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::CertificateDer;
use sha2::Digest as _;

/// The URI SAN prefix that names a gate: `urn:gatehouse:gate:<id>`.
pub const GATE_URI_PREFIX: &str = "urn:gatehouse:gate:";
/// How long a site CA is valid: 20 years.
pub const CA_VALIDITY_DAYS: u32 = 7305;
/// Default validity of server and gate certificates: 825 days, the longest the CA/Browser
/// Forum allowed for TLS server certificates, short enough that a lost gate's certificate
/// runs out on its own.
pub const DEFAULT_VALIDITY_DAYS: u32 = 825;
/// Certificates start one hour in the past, so a gate whose clock is a little behind the
/// centre's can use a certificate issued a minute ago.
const BACKDATE: chrono::Duration = chrono::Duration::hours(1);

/// Why a PKI operation failed; each message names the file or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("a site CA already exists in {0} (ca.crt or ca.key); refusing to overwrite it")]
    CaExists(PathBuf),
    #[error("no site CA in {0}: ca.crt or ca.key is missing")]
    NoCa(PathBuf),
    #[error("{path} is not a usable CA certificate: {reason}")]
    BadCa { path: PathBuf, reason: String },
    #[error("{path} is not a usable CA key: {reason}")]
    BadCaKey { path: PathBuf, reason: String },
    #[error("the CA key {key} does not match the CA certificate {cert}")]
    CaKeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot read back the certificate just written to {path}: {reason}")]
    ReadBack { path: PathBuf, reason: String },
    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid gate id {0}: a gate id is a positive integer")]
    InvalidGateId(i64),
    #[error("invalid validity: {0}")]
    InvalidValidity(String),
    #[error("cannot generate the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("a current pass key exists ({0}); rotate it with `gatehouse pki pass-key rotate`")]
    PassKeyExists(PathBuf),
    #[error("{path} is not a usable pass key: {reason}")]
    BadPassKey { path: PathBuf, reason: String },
}

/// Why a certificate names no gate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("not an X.509 certificate: {0}")]
    NotX509(String),
    #[error("the certificate has no `urn:gatehouse:gate:<id>` URI name")]
    NoGateName,
    #[error("the certificate names more than one gate")]
    SeveralGateNames,
    #[error("the certificate's gate name {0:?} does not hold a positive gate id")]
    BadGateName(String),
}

/// The period a certificate is valid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl Validity {
    /// From an hour ago (clock skew) until `days` days from now. `days` must be at least 1.
    pub fn days(days: u32) -> Result<Validity, PkiError> {
        if days == 0 {
            return Err(PkiError::InvalidValidity(
                "a certificate must be valid for at least 1 day".into(),
            ));
        }
        let now = Utc::now();
        Ok(Validity {
            not_before: now - BACKDATE,
            not_after: now + chrono::Duration::days(i64::from(days)),
        })
    }

    /// An explicit window, which may lie wholly in the past or the future: for tests that need
    /// an expired or not-yet-valid certificate. The command line never offers this.
    pub fn between(
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<Validity, PkiError> {
        if not_after <= not_before {
            return Err(PkiError::InvalidValidity(format!(
                "not-after {not_after} is not after not-before {not_before}"
            )));
        }
        Ok(Validity {
            not_before,
            not_after,
        })
    }
}

/// Where a certificate and its key live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `ca.crt` / `ca.key` in `dir`.
pub fn ca_paths(dir: &Path) -> CertPaths {
    CertPaths {
        cert: dir.join("ca.crt"),
        key: dir.join("ca.key"),
    }
}

/// `server-<name>.crt/.key` in `dir`.
pub fn server_paths(dir: &Path, name: &str) -> CertPaths {
    CertPaths {
        cert: dir.join(format!("server-{name}.crt")),
        key: dir.join(format!("server-{name}.key")),
    }
}

/// `gate-<id>.crt/.key` in `dir`.
pub fn gate_paths(dir: &Path, gate_id: i64) -> CertPaths {
    CertPaths {
        cert: dir.join(format!("gate-{gate_id}.crt")),
        key: dir.join(format!("gate-{gate_id}.key")),
    }
}

/// What was written: enough to print and to check, never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub paths: CertPaths,
    /// The subject distinguished name, e.g. `CN=gate-7, O=Gatehouse`.
    pub subject: String,
    /// The subject alternative names, e.g. `URI:urn:gatehouse:gate:7`, `DNS:central.example`.
    pub names: Vec<String>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// SHA-256 of the certificate's DER, as colon-separated upper-case hex.
    pub sha256_fingerprint: String,
}

/// Creates the site CA in `dir` (created 0700 if missing): `ca.key` (0600) and `ca.crt`.
/// `site` names the site in the CA's subject (`CN=Gatehouse Site CA <site>`, `O=<site>`).
/// Refuses if either file exists; on failure nothing is left behind.
pub fn init_ca(dir: &Path, site: &str) -> Result<Issued, PkiError> {
    let site = site.trim();
    if site.is_empty() || site.chars().count() > 64 || site.chars().any(char::is_control) {
        return Err(PkiError::InvalidName {
            name: site.into(),
            reason: "a site name has 1 to 64 printable characters",
        });
    }
    let paths = ca_paths(dir);
    if paths.cert.exists() || paths.key.exists() {
        return Err(PkiError::CaExists(dir.to_path_buf()));
    }
    create_dir(dir)?;
    let validity = Validity::days(CA_VALIDITY_DAYS)?;
    let key = KeyPair::generate()?;
    let mut params = base_params(validity)?;
    params.distinguished_name = ca_name(site);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key)?;
    write_pair(&paths, cert.pem().as_bytes(), &key, false)?;
    describe(paths, cert.der())
}

/// Issues a server certificate `server-<name>.crt/.key` signed by the site CA in `dir`.
/// `name` (a DNS name) is the subject's CN and the first SAN; each of `extra_names` is added
/// as an IP SAN if it parses as an IP address, else as a DNS SAN. EKU: serverAuth only.
/// Replaces an earlier certificate of the same name.
pub fn issue_server(
    dir: &Path,
    name: &str,
    extra_names: &[String],
    validity: Validity,
) -> Result<Issued, PkiError> {
    check_dns_name(name)?;
    let mut sans = vec![SanType::DnsName(ia5(name)?)];
    for extra in extra_names {
        let san = match extra.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => {
                check_dns_name(extra)?;
                SanType::DnsName(ia5(extra)?)
            }
        };
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    let issuer = load_issuer(dir)?;
    let key = KeyPair::generate()?;
    let mut params = base_params(validity)?;
    params.distinguished_name = leaf_name(name, &issuer.site);
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer.issuer)?;
    let paths = server_paths(dir, name);
    write_pair(&paths, cert.pem().as_bytes(), &key, true)?;
    describe(paths, cert.der())
}

/// Issues gate `gate_id`'s client certificate `gate-<id>.crt/.key` signed by the site CA in
/// `dir`: URI SAN `urn:gatehouse:gate:<id>`, CN `gate-<id>`, EKU clientAuth only. Replaces an
/// earlier certificate of the same gate (the old one stays valid until it expires: disable the
/// gate centrally to refuse it).
pub fn issue_gate(dir: &Path, gate_id: i64, validity: Validity) -> Result<Issued, PkiError> {
    if gate_id <= 0 {
        return Err(PkiError::InvalidGateId(gate_id));
    }
    let issuer = load_issuer(dir)?;
    let key = KeyPair::generate()?;
    let mut params = base_params(validity)?;
    params.distinguished_name = leaf_name(&format!("gate-{gate_id}"), &issuer.site);
    params.subject_alt_names = vec![SanType::URI(ia5(&format!("{GATE_URI_PREFIX}{gate_id}"))?)];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer.issuer)?;
    let paths = gate_paths(dir, gate_id);
    write_pair(&paths, cert.pem().as_bytes(), &key, true)?;
    describe(paths, cert.der())
}

/// The gate a certificate names: its one URI SAN `urn:gatehouse:gate:<id>`. Call it only on a
/// certificate the TLS layer has verified against the site CA — the name is only as good as
/// the signature over it.
pub fn gate_id_from_cert(cert: &CertificateDer<'_>) -> Result<i64, IdentityError> {
    let (_, x509) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| IdentityError::NotX509(e.to_string()))?;
    let san = x509
        .subject_alternative_name()
        .map_err(|e| IdentityError::NotX509(e.to_string()))?;
    let mut found = None;
    for name in san.iter().flat_map(|ext| ext.value.general_names.iter()) {
        if let x509_parser::extensions::GeneralName::URI(uri) = name {
            let Some(id) = uri.strip_prefix(GATE_URI_PREFIX) else {
                continue;
            };
            if found.is_some() {
                return Err(IdentityError::SeveralGateNames);
            }
            // Digits only: no sign, no spaces, no leading zeros that could alias another id.
            let id = match id.parse::<i64>() {
                Ok(n)
                    if n > 0 && id.bytes().all(|b| b.is_ascii_digit()) && !id.starts_with('0') =>
                {
                    n
                }
                _ => return Err(IdentityError::BadGateName((*uri).to_string())),
            };
            found = Some(id);
        }
    }
    found.ok_or(IdentityError::NoGateName)
}

/// Describes a certificate just issued (subject, names, validity, fingerprint), without its key.
fn describe(paths: CertPaths, cert: &CertificateDer<'_>) -> Result<Issued, PkiError> {
    let bad = |reason: String| PkiError::ReadBack {
        path: paths.cert.clone(),
        reason,
    };
    let (_, x509) =
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| bad(e.to_string()))?;
    let mut names = Vec::new();
    if let Some(san) = x509
        .subject_alternative_name()
        .map_err(|e| bad(e.to_string()))?
    {
        for name in &san.value.general_names {
            use x509_parser::extensions::GeneralName;
            names.push(match name {
                GeneralName::DNSName(d) => format!("DNS:{d}"),
                GeneralName::URI(u) => format!("URI:{u}"),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => format!("IP:{}", IpAddr::from(<[u8; 4]>::try_from(*b).unwrap())),
                    16 => format!("IP:{}", IpAddr::from(<[u8; 16]>::try_from(*b).unwrap())),
                    _ => "IP:?".into(),
                },
                other => format!("{other}"),
            });
        }
    }
    let instant = |t: x509_parser::time::ASN1Time| {
        DateTime::from_timestamp(t.timestamp(), 0).ok_or_else(|| bad("time out of range".into()))
    };
    Ok(Issued {
        subject: x509.subject().to_string(),
        names,
        not_before: instant(x509.validity().not_before)?,
        not_after: instant(x509.validity().not_after)?,
        sha256_fingerprint: fingerprint(cert),
        paths,
    })
}

/// SHA-256 of a certificate's DER as colon-separated upper-case hex (`AB:CD:…`).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = sha2::Sha256::digest(cert.as_ref());
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{byte:02X}");
    }
    out
}

struct LoadedIssuer {
    issuer: Issuer<'static, KeyPair>,
    site: String,
}

fn load_issuer(dir: &Path) -> Result<LoadedIssuer, PkiError> {
    let paths = ca_paths(dir);
    if !paths.cert.exists() || !paths.key.exists() {
        return Err(PkiError::NoCa(dir.to_path_buf()));
    }
    let cert_pem = read_text(&paths.cert)?;
    let key_pem = read_text(&paths.key)?;
    let bad = |reason: String| PkiError::BadCa {
        path: paths.cert.clone(),
        reason,
    };
    let der = first_certificate(&cert_pem)
        .ok_or_else(|| bad("no CERTIFICATE block in the file".into()))?;
    let (_, x509) = x509_parser::parse_x509_certificate(&der).map_err(|e| bad(e.to_string()))?;
    if !x509.is_ca() {
        return Err(bad("it is not a CA certificate".into()));
    }
    let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::BadCaKey {
        path: paths.key.clone(),
        reason: e.to_string(),
    })?;
    if rcgen::PublicKeyData::subject_public_key_info(&key) != x509.public_key().raw {
        return Err(PkiError::CaKeyMismatch {
            cert: paths.cert,
            key: paths.key,
        });
    }
    let site = x509
        .subject()
        .iter_organization()
        .next()
        .and_then(|o| o.as_str().ok())
        .unwrap_or("Gatehouse")
        .to_string();
    let issuer = Issuer::from_ca_cert_der(&der, key).map_err(|e| bad(e.to_string()))?;
    Ok(LoadedIssuer { issuer, site })
}

fn base_params(validity: Validity) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.not_before = to_offset(validity.not_before)?;
    params.not_after = to_offset(validity.not_after)?;
    let mut serial = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut serial);
    serial[0] &= 0x7f; // positive
    serial[0] |= 0x01; // and 16 bytes long
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(params)
}

fn to_offset(t: DateTime<Utc>) -> Result<time::OffsetDateTime, PkiError> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .map_err(|e| PkiError::InvalidValidity(format!("{t}: {e}")))
}

fn ca_name(site: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("Gatehouse Site CA {site}"));
    dn.push(DnType::OrganizationName, site);
    dn
}

fn leaf_name(common_name: &str, site: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, site);
    dn
}

fn ia5(s: &str) -> Result<rcgen::string::Ia5String, PkiError> {
    rcgen::string::Ia5String::try_from(s).map_err(|_| PkiError::InvalidName {
        name: s.into(),
        reason: "only ASCII characters are allowed",
    })
}

/// A host name: dot-separated labels of ASCII letters, digits and inner hyphens. Server names
/// become file names, so nothing else is allowed.
fn check_dns_name(name: &str) -> Result<(), PkiError> {
    let invalid = |reason| {
        Err(PkiError::InvalidName {
            name: name.into(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 253 {
        return invalid("a host name has 1 to 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return invalid("each dot-separated part of a host name has 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return invalid("a host name has only ASCII letters, digits, '-' and '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return invalid("a part of a host name cannot start or end with '-'");
        }
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| PkiError::Io {
            action: "create directory",
            path: dir.to_path_buf(),
            source,
        })
}

fn read_text(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// The DER of the first CERTIFICATE block of a PEM text.
fn first_certificate(text: &str) -> Option<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::pem_slice_iter(text.as_bytes()).find_map(Result::ok)
}

/// Writes the key (0600) then the certificate (0644), each atomically. With `replace` false
/// neither may exist yet. If the certificate cannot be written, the key just written is
/// removed again.
fn write_pair(
    paths: &CertPaths,
    cert_pem: &[u8],
    key: &KeyPair,
    replace: bool,
) -> Result<(), PkiError> {
    write_atomic(&paths.key, key.serialize_pem().as_bytes(), 0o600, replace)?;
    if let Err(e) = write_atomic(&paths.cert, cert_pem, 0o644, replace) {
        let _ = fs::remove_file(&paths.key);
        return Err(e);
    }
    Ok(())
}

fn write_atomic(path: &Path, contents: &[u8], mode: u32, replace: bool) -> Result<(), PkiError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |action: &'static str| {
        move |source: std::io::Error| PkiError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    // tempfile creates the file 0600 with O_EXCL; the certificate is widened after writing.
    let mut tmp = tempfile::Builder::new()
        .prefix(".gatehouse-pki-")
        .tempfile_in(dir)
        .map_err(io("create a temporary file for"))?;
    tmp.write_all(contents).map_err(io("write"))?;
    tmp.as_file().sync_all().map_err(io("sync"))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode)).map_err(io("chmod"))?;
    if replace {
        tmp.persist(path).map_err(|e| io("rename into")(e.error))?;
    } else {
        tmp.persist_noclobber(path)
            .map_err(|e| io("create")(e.error))?;
    }
    // Make the rename itself durable.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_certificate_names_its_gate_and_only_that() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path(), "测试大学").unwrap();
        let issued = issue_gate(dir.path(), 42, Validity::days(10).unwrap()).unwrap();
        assert_eq!(issued.names, vec!["URI:urn:gatehouse:gate:42".to_string()]);
        assert!(issued.subject.contains("CN=gate-42"), "{}", issued.subject);
        let pem = fs::read(&issued.paths.cert).unwrap();
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
        assert_eq!(gate_id_from_cert(&der), Ok(42));
    }

    #[test]
    fn a_server_certificate_names_no_gate() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path(), "site").unwrap();
        let issued = issue_server(
            dir.path(),
            "central.example",
            &["127.0.0.1".into(), "localhost".into()],
            Validity::days(10).unwrap(),
        )
        .unwrap();
        assert_eq!(
            issued.names,
            vec!["DNS:central.example", "IP:127.0.0.1", "DNS:localhost"]
        );
        let pem = fs::read(&issued.paths.cert).unwrap();
        let der = rustls::pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
        assert_eq!(gate_id_from_cert(&der), Err(IdentityError::NoGateName));
    }

    #[test]
    fn bad_names_and_ids_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path(), "site").unwrap();
        let v = Validity::days(1).unwrap();
        for bad in ["", "../etc", "a b", "-x.example", "中文.example"] {
            let e = issue_server(dir.path(), bad, &[], v).unwrap_err();
            assert!(matches!(e, PkiError::InvalidName { .. }), "{bad}: {e}");
        }
        assert!(matches!(
            issue_gate(dir.path(), 0, v),
            Err(PkiError::InvalidGateId(0))
        ));
        assert!(matches!(
            Validity::days(0),
            Err(PkiError::InvalidValidity(_))
        ));
        let mut files: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(files, vec!["ca.crt", "ca.key"]);
    }

    #[test]
    fn issuing_without_a_ca_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let e = issue_gate(dir.path(), 1, Validity::days(1).unwrap()).unwrap_err();
        assert!(matches!(e, PkiError::NoCa(_)), "{e}");
    }

    #[test]
    fn a_ca_key_that_does_not_match_its_certificate_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        init_ca(a.path(), "a").unwrap();
        init_ca(b.path(), "b").unwrap();
        fs::copy(b.path().join("ca.key"), a.path().join("ca.key")).unwrap();
        let e = issue_gate(a.path(), 1, Validity::days(1).unwrap()).unwrap_err();
        assert!(matches!(e, PkiError::CaKeyMismatch { .. }), "{e}");
    }

    #[test]
    fn gate_names_that_are_not_plain_positive_numbers_are_refused() {
        for (uri, ok) in [
            ("urn:gatehouse:gate:7", Some(7)),
            ("urn:gatehouse:gate:07", None),
            ("urn:gatehouse:gate:+7", None),
            ("urn:gatehouse:gate:-7", None),
            ("urn:gatehouse:gate:0", None),
            ("urn:gatehouse:gate:", None),
        ] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::default();
            params.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
            let cert = params.self_signed(&key).unwrap();
            let got = gate_id_from_cert(cert.der());
            match ok {
                Some(id) => assert_eq!(got, Ok(id), "{uri}"),
                None => assert!(
                    matches!(got, Err(IdentityError::BadGateName(_))),
                    "{uri}: {got:?}"
                ),
            }
        }
    }
}
