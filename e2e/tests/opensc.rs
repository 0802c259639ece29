//! The virtual PIV card as OpenSC sees it, through a real, private `pcscd`: OpenSC's PIV driver
//! is the independent check that the card answers as NIST SP 800-73-4 cards do. `opensc-tool`
//! names it, `pkcs15-tool` lists its certificates and unblocks it with the PUK, and
//! `pkcs11-tool` signs with the PIV Authentication key once the new PIN is given.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use unlock_e2e::harness::{Card, PrivatePcscd, wait_until};
use unlock_e2e::piv_ca::{CaFiles, TestCa, verify_prehash};
use unlock_e2e::piv_card::{DEFAULT_GUID, DEFAULT_PUK};
use x509_cert::der::{Decode, DecodePem, Encode};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

const PKCS11_MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
const NEW_PIN: &str = "905173";

/// A private pcscd with the virtual PIV card (its PIN blocked) in its reader, and an OpenSC
/// configuration of its own that caches nothing between runs.
struct Rig {
    card: Card,
    ca: TestCa,
    pcscd: PrivatePcscd,
    conf: PathBuf,
    dir: tempfile::TempDir,
}

impl Rig {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pcscd = PrivatePcscd::start(dir.path());
        let files = CaFiles::in_dir(dir.path(), "trusted");
        let ca = TestCa::load_or_create(&files, "Trusted PIV CA").unwrap();
        let card = Card::start_piv(
            Path::new(env!("CARGO_BIN_EXE_virtual-card")),
            pcscd.vpcd_port,
            &files,
            &["--locked"],
        );
        let conf = dir.path().join("opensc.conf");
        std::fs::write(
            &conf,
            "app default {\n  framework pkcs15 {\n    use_file_caching = no;\n  }\n}\n",
        )
        .unwrap();
        let rig = Self {
            card,
            ca,
            pcscd,
            conf,
            dir,
        };
        wait_until(|| rig.tool("opensc-tool", &["--name"]).status.success());
        rig
    }

    /// Runs an OpenSC tool against the private pcscd.
    fn tool(&self, tool: &str, args: &[&str]) -> Output {
        Command::new(tool)
            .args(args)
            .env("PCSCLITE_CSOCK_NAME", &self.pcscd.socket)
            .env("OPENSC_CONF", &self.conf)
            .output()
            .unwrap_or_else(|error| panic!("run {tool} (apt-get install opensc): {error}"))
    }

    /// Runs a tool that must succeed; returns what it printed.
    fn succeeds(&self, tool: &str, args: &[&str]) -> String {
        let output = self.tool(tool, args);
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "{tool} {args:?} failed:\n{printed}"
        );
        printed
    }

    /// The certificate OpenSC reads for key `id`, DER.
    fn certificate(&self, id: &str) -> Vec<u8> {
        let output = self.tool("pkcs15-tool", &["--read-certificate", id]);
        assert!(
            output.status.success(),
            "pkcs15-tool --read-certificate {id}: {output:?}"
        );
        x509_cert::Certificate::from_pem(&output.stdout)
            .unwrap()
            .to_der()
            .unwrap()
    }
}

#[test]
fn opensc_names_the_card_a_piv_card_and_lists_both_certificates() {
    let mut rig = Rig::start();
    let name = rig.succeeds("opensc-tool", &["--name"]);
    assert!(
        name.contains("Personal Identity Verification Card"),
        "{name}"
    );

    let listed = rig.succeeds("pkcs15-tool", &["--list-certificates"]);
    for expected in [
        "Certificate for PIV Authentication",
        "Certificate for Card Authentication",
    ] {
        assert!(listed.contains(expected), "{expected} in:\n{listed}");
    }
    // Each names the card by its GUID, and the test CA issued it.
    let ca = x509_cert::Certificate::from_der(rig.ca.cert_der()).unwrap();
    for id in ["01", "04"] {
        let certificate = x509_cert::Certificate::from_der(&rig.certificate(id)).unwrap();
        assert_eq!(
            certificate.tbs_certificate.issuer,
            ca.tbs_certificate.subject
        );
        let (_, san) = certificate
            .tbs_certificate
            .get::<SubjectAltName>()
            .unwrap()
            .expect("a subject alternative name");
        let guid = unlock_protocol::CardGuid::parse(DEFAULT_GUID).unwrap();
        assert!(
            matches!(&san.0[..], [GeneralName::UniformResourceIdentifier(uri)] if uri.as_str() == guid.urn()),
            "{san:?}"
        );
    }
    // Reading is all OpenSC did: no PIN or PUK try was spent.
    let state = rig.card.state();
    assert_eq!(
        (state["pin_tries"].as_u64(), state["puk_tries"].as_u64()),
        (Some(0), Some(3))
    );
}

#[test]
fn pkcs15_tool_unblocks_with_the_puk_and_pkcs11_tool_then_signs_with_the_new_pin() {
    let mut rig = Rig::start();

    // A wrong PUK is refused and costs a try.
    let wrong = rig.tool(
        "pkcs15-tool",
        &[
            "--unblock-pin",
            "--auth-id",
            "01",
            "--puk",
            "11223344",
            "--new-pin",
            NEW_PIN,
        ],
    );
    assert!(!wrong.status.success(), "a wrong PUK unblocked the card");
    assert_eq!(rig.card.state()["puk_tries"], 2);

    rig.succeeds(
        "pkcs15-tool",
        &[
            "--unblock-pin",
            "--auth-id",
            "01",
            "--puk",
            DEFAULT_PUK,
            "--new-pin",
            NEW_PIN,
        ],
    );
    let state = rig.card.state();
    assert_eq!(state["pin_tries"], 3, "{state}");
    assert_eq!(state["puk_tries"], 3, "{state}");
    assert_eq!(rig.card.command(&format!("pin-is {NEW_PIN}")), "true");

    let digest: [u8; 32] = Sha256::digest(b"something to sign").into();
    let input = rig.dir.path().join("digest.bin");
    let output = rig.dir.path().join("signature.der");
    std::fs::write(&input, digest).unwrap();
    rig.succeeds(
        "pkcs11-tool",
        &[
            "--module",
            PKCS11_MODULE,
            "--login",
            "--pin",
            NEW_PIN,
            "--sign",
            "--mechanism",
            "ECDSA",
            "--id",
            "01",
            "--input-file",
            &input.to_string_lossy(),
            "--output-file",
            &output.to_string_lossy(),
            "--signature-format",
            "openssl",
        ],
    );
    let signature = std::fs::read(&output).unwrap();
    verify_prehash(&rig.certificate("01"), &digest, &signature).unwrap();
    assert!(
        verify_prehash(&rig.certificate("04"), &digest, &signature).is_err(),
        "signed with the PIV Authentication key, not the Card Authentication key"
    );
}
