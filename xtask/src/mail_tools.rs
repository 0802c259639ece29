//! The Python the server's mail test (`server/tests/api/check_mail.py`) reads messages back
//! with: dkimpy and everything it imports, pinned, in a virtualenv under the target folder.
//! The test finds it through `MAIL_CHECK_PYTHON`, or at this same place.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

use crate::cmd;

/// The environment variable naming the virtualenv's Python for the tests.
/// Not under `UNLOCK_`: the server reads every `UNLOCK_` variable as configuration and
/// refuses names it does not know, and the tests' servers inherit the environment.
pub const PYTHON_VAR: &str = "MAIL_CHECK_PYTHON";

/// dkimpy, its DNS library (imported, though the test asks no DNS), PyNaCl for Ed25519
/// signatures, and theirs: every package pinned, so nothing unpinned is installed.
const REQUIREMENTS: &str = "dkimpy==1.1.8\n\
                            dnspython==2.9.2\n\
                            PyNaCl==1.6.2\n\
                            cffi==2.1.1\n\
                            pycparser==3.12\n";

/// The virtualenv's Python, installing the pinned packages unless they already are.
pub fn ensure_installed() -> anyhow::Result<PathBuf> {
    let venv = cmd::target_dir().join("tools").join("mail-check");
    let python = venv.join("bin").join("python");
    let pinned = venv.join("requirements.txt");
    let installed = std::fs::read_to_string(&pinned).is_ok_and(|text| text == REQUIREMENTS);
    if installed && imports(&python) {
        println!("    dkimpy is already installed in {}", venv.display());
        return Ok(python);
    }
    cmd::run(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )
    .context("make a Python virtualenv (Debian: apt-get install python3-venv)")?;
    let wanted = venv.join("wanted.txt");
    std::fs::write(&wanted, REQUIREMENTS).context("write the mail test's requirements")?;
    cmd::run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "-r",
            ])
            .arg(&wanted),
    )?;
    anyhow::ensure!(
        imports(&python),
        "dkimpy was installed in {} but does not import",
        venv.display()
    );
    // Written last: an install cut short is redone next time.
    std::fs::write(&pinned, REQUIREMENTS).context("record the installed requirements")?;
    Ok(python)
}

/// Whether the packages the check uses import.
fn imports(python: &std::path::Path) -> bool {
    Command::new(python)
        .args(["-c", "import dkim, dns, nacl.signing"])
        .output()
        .is_ok_and(|output| output.status.success())
}
