//! Writes COUNT EIP-2335 keystores of fresh random validator keys into DIR,
//! as the deposit CLI writes them: scrypt n = 2^18, r = 8, p = 1, a salt
//! (and so a KDF run) per keystore, one password. The input of
//! `scripts/bench-split.sh`, which splits them with `dvkg demo
//! --split-keystores` and with ssv-keys.
//!
//! Run: `cargo run --release --example make-keystores -- DIR COUNT PASSWORD_FILE`
//! (DIR must not exist; the password is the file's first line).

use std::path::PathBuf;
use std::process::ExitCode;

use dvkg::crypto::{Scalar, SecretKey};
use dvkg::eth::keystore::{KdfParams, KeystoreEncryptor, KeystoreMeta, Password, SaltMode};
use rand::rngs::OsRng;
use rayon::prelude::*;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, count, password_file] = args.as_slice() else {
        eprintln!("usage: make-keystores DIR COUNT PASSWORD_FILE");
        return ExitCode::from(2);
    };
    match run(dir.into(), count, password_file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("make-keystores: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    dir: PathBuf,
    count: &str,
    password_file: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let count: usize = count.parse()?;
    let text = std::fs::read_to_string(password_file)?;
    let password = Password::new(text.lines().next().unwrap_or_default());
    std::fs::create_dir(&dir)?;
    let encryptor = KeystoreEncryptor::new(
        &password,
        KdfParams::scrypt_default(),
        SaltMode::PerKeystore,
        &mut OsRng,
    )?;
    // One scrypt run per keystore, on every core.
    (0..count).into_par_iter().try_for_each(
        |v| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let secret = Scalar::random(&mut OsRng);
            let key = SecretKey::from_bytes(&secret.to_bytes_be())?;
            let path = format!("m/12381/3600/{v}/0/0");
            let keystore = encryptor.encrypt(
                &secret.to_bytes_be(),
                KeystoreMeta {
                    pubkey: &key.public_key(),
                    path: &path,
                    description: "bench-split",
                },
                &mut OsRng,
            )?;
            // The deposit CLI's file name: the path with '/' as '_'.
            let name = format!("keystore-{}.json", path.replace('/', "_"));
            std::fs::write(dir.join(name), keystore.to_json_string()?)?;
            Ok(())
        },
    )?;
    eprintln!(
        "make-keystores: {count} keystores (scrypt n=2^18, a salt each) in {}",
        dir.display()
    );
    Ok(())
}
