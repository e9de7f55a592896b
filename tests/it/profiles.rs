//! Saved profiles through the CLI, as a user drives them: keys go in by
//! stdin and never come out in the TOML, `show`, `list` or an export unless
//! asked; the key file is private and announced once; service limits are
//! enforced; and `tally stream --profile` goes live with the saved settings
//! and records into the profile's directory.
//!
//! Every test has its own HOME, and `TALLY_SECRET_STORE=file`, so the
//! user's real configuration and keyring are never touched; the keyring
//! tests instead give Tally a private session bus (GNOME Keyring on it,
//! unlocked or locked, or nothing) and let it decide.

use crate::common;

use common::keyring::PrivateKeyring;
use common::*;
use std::path::Path;
use std::time::Duration;

const TWITCH_KEY: &str = "live_123456789_TwItChSeCrEt";
const YOUTUBE_KEY: &str = "abcd-efgh-YoUtUbE-SeCrEt";

fn ok(out: &std::process::Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed ({}):\n{stderr}", out.status);
    stderr
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// A profile with a Twitch and a YouTube destination, keys given on stdin.
fn two_destination_profile(home: &Path) -> (String, String) {
    let first = tally_in_home(&["profiles", "add", "show", "--preset", "twitch", "--key-stdin"], home, Some(&format!("{TWITCH_KEY}\n")));
    let first_err = ok(&first, "profiles add");
    let second =
        tally_in_home(&["profiles", "add-destination", "show", "--preset", "youtube", "--key-stdin"], home, Some(&format!("{YOUTUBE_KEY}\n")));
    let second_err = ok(&second, "profiles add-destination");
    (first_err, second_err)
}

#[test]
fn keys_stay_out_of_the_profile_file_and_every_listing_and_the_key_file_is_private() {
    let home = TestDir::new("profiles-keys");
    let (first_err, second_err) = two_destination_profile(home.path());
    // No keyring here: the fallback file is announced, once.
    assert!(first_err.contains("no OS keyring") && first_err.contains("keys.toml"), "{first_err}");
    assert!(!second_err.contains("no OS keyring"), "warned again:\n{second_err}");

    let config = home.join(".config/tally");
    let toml = std::fs::read_to_string(config.join("profiles.toml")).expect("profiles.toml");
    let keys = config.join("keys.toml");
    assert_eq!(mode(&keys), 0o600, "the key file is readable only by its owner");
    let key_file = std::fs::read_to_string(&keys).expect("keys.toml");
    assert!(key_file.contains(TWITCH_KEY) && key_file.contains(YOUTUBE_KEY), "both keys stored");

    let list = tally_in_home(&["profiles", "list"], home.path(), None);
    ok(&list, "profiles list");
    let show = tally_in_home(&["profiles", "show", "show"], home.path(), None);
    ok(&show, "profiles show");
    let shown = stdout(&show);
    assert!(shown.contains("rtmp://live.twitch.tv/app") && shown.contains("rtmps://a.rtmps.youtube.com:443/live2"), "{shown}");
    assert!(shown.matches("key: set").count() == 2, "{shown}");
    for (what, text) in [("profiles.toml", toml), ("list", stdout(&list)), ("show", shown)] {
        for key in [TWITCH_KEY, YOUTUBE_KEY] {
            assert!(!text.contains(key), "{what} shows a key:\n{text}");
        }
    }

    // Removing a destination removes its key; removing the profile, the rest.
    ok(&tally_in_home(&["profiles", "remove-destination", "show", "youtube"], home.path(), None), "remove-destination");
    let key_file = std::fs::read_to_string(&keys).expect("keys.toml");
    assert!(key_file.contains(TWITCH_KEY) && !key_file.contains(YOUTUBE_KEY), "{key_file}");
    ok(&tally_in_home(&["profiles", "remove", "show"], home.path(), None), "remove");
    let key_file = std::fs::read_to_string(&keys).expect("keys.toml");
    assert!(!key_file.contains(TWITCH_KEY), "{key_file}");
    let gone = tally_in_home(&["profiles", "show", "show"], home.path(), None);
    assert!(!gone.status.success(), "a removed profile is not shown");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("show"), "the error names the profile");
}

#[test]
fn an_export_has_no_keys_unless_asked_and_an_import_puts_them_back_in_the_store() {
    let home = TestDir::new("profiles-export");
    two_destination_profile(home.path());

    let plain = tally_in_home(&["profiles", "export", "show"], home.path(), None);
    ok(&plain, "export");
    let plain = stdout(&plain);
    assert!(plain.contains("[[profile]]") && plain.contains("live.twitch.tv"), "{plain}");
    assert!(!plain.contains(TWITCH_KEY) && !plain.contains(YOUTUBE_KEY), "a plain export holds no key:\n{plain}");

    let file = home.join("with-keys.toml");
    let file_arg = file.to_string_lossy().into_owned();
    // Over an existing, world-readable file: it ends up private all the same.
    std::fs::write(&file, "old").expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    ok(&tally_in_home(&["profiles", "export", "show", "--include-keys", "-o", &file_arg], home.path(), None), "export --include-keys");
    assert_eq!(mode(&file), 0o600, "an export with keys is private");
    let with_keys = std::fs::read_to_string(&file).expect("export");
    assert!(with_keys.contains(TWITCH_KEY) && with_keys.contains(YOUTUBE_KEY));

    // Another machine (another HOME) imports it: keys go to its store, not its TOML.
    let other = TestDir::new("profiles-import");
    ok(&tally_in_home(&["profiles", "import", &file_arg], other.path(), None), "import");
    let toml = std::fs::read_to_string(other.join(".config/tally/profiles.toml")).expect("profiles.toml");
    assert!(toml.contains("live.twitch.tv") && !toml.contains(TWITCH_KEY) && !toml.contains(YOUTUBE_KEY), "{toml}");
    let shown = stdout(&tally_in_home(&["profiles", "show", "show"], other.path(), None));
    assert_eq!(shown.matches("key: set").count(), 2, "{shown}");
    let keys = std::fs::read_to_string(other.join(".config/tally/keys.toml")).expect("keys.toml");
    assert!(keys.contains(TWITCH_KEY) && keys.contains(YOUTUBE_KEY));

    // A plain export imports without keys; they are then unset, not invented.
    let third = TestDir::new("profiles-import-plain");
    let plain_file = third.join("plain.toml");
    std::fs::write(&plain_file, &plain).expect("write export");
    ok(&tally_in_home(&["profiles", "import", &plain_file.to_string_lossy()], third.path(), None), "import plain");
    let shown = stdout(&tally_in_home(&["profiles", "show", "show"], third.path(), None));
    assert_eq!(shown.matches("key: set").count(), 0, "{shown}");
}

#[test]
fn service_limits_are_refused_unless_forced_and_recommendations_warned() {
    let home = TestDir::new("profiles-limits");
    // Twitch: at most 6000 kbit/s of video.
    let over = tally_in_home(&["profiles", "add", "fast", "--preset", "twitch", "--video-bitrate", "8000", "--key-stdin"], home.path(), Some("k\n"));
    assert!(!over.status.success(), "saved beyond Twitch's limit");
    let err = String::from_utf8_lossy(&over.stderr);
    assert!(err.contains("6000") && err.contains("--force"), "{err}");
    assert!(!home.join(".config/tally/profiles.toml").exists() || !std::fs::read_to_string(home.join(".config/tally/profiles.toml")).unwrap_or_default().contains("fast"));
    let forced = tally_in_home(
        &["profiles", "add", "fast", "--preset", "twitch", "--video-bitrate", "8000", "--force", "--key-stdin"],
        home.path(),
        Some("k\n"),
    );
    ok(&forced, "add --force");
    // Facebook takes RTMPS only.
    let plain = tally_in_home(
        &["profiles", "add", "fb", "--preset", "facebook", "--url", "rtmp://live-api-s.facebook.com/rtmp", "--key-stdin"],
        home.path(),
        Some("k\n"),
    );
    assert!(!plain.status.success(), "plain RTMP to Facebook was saved");
    assert!(String::from_utf8_lossy(&plain.stderr).contains("RTMPS"), "{}", String::from_utf8_lossy(&plain.stderr));
    // The preset is found from the host when not named.
    ok(&tally_in_home(&["profiles", "add", "tw", "--url", "rtmp://live.twitch.tv/app", "--key-stdin"], home.path(), Some("k\n")), "add by URL");
    let shown = stdout(&tally_in_home(&["profiles", "show", "tw"], home.path(), None));
    assert!(shown.contains("preset: twitch"), "{shown}");
}

#[test]
fn stream_with_a_profile_goes_live_with_its_settings_and_records_into_its_directory() {
    let home = TestDir::new("profiles-stream");
    let nginx = Nginx::start();
    let records = home.join("recordings");
    std::fs::create_dir_all(&records).expect("mkdir");
    let server = format!("rtmp://127.0.0.1:{}/live", nginx.port());
    let key = "profile-KEY-4711";
    let rec = records.to_string_lossy().into_owned();
    let add = tally_in_home(
        &[
            "profiles", "add", "rehearsal", "--url", &server, "--key-stdin", "--video", "test", "--audio", "sine", "--size", "640x360",
            "--fps", "25", "--video-bitrate", "800", "--record", &rec,
        ],
        home.path(),
        Some(&format!("{key}\n")),
    );
    ok(&add, "profiles add");
    let run = Proc::spawn("tally", &mut tally_in_home_cmd(&["stream", "--profile", "rehearsal", "--duration", "4"], home.path()))
        .wait_output(Duration::from_secs(60));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "stream --profile failed:\n{err}");
    assert!(!err.contains(key) && !String::from_utf8_lossy(&run.stdout).contains(key), "the key showed:\n{err}");
    // nginx saw the key from the store as the stream name.
    assert_eq!(nginx.log_count(&format!("publish: name='{key}'")), 1, "{}", nginx.diagnostics());
    // One timestamped recording, with the profile's size and rate.
    let files: Vec<_> = std::fs::read_dir(&records).expect("recordings").flatten().map(|e| e.path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    assert!(name.starts_with("tally-") && name.ends_with(".flv"), "{name}");
    let info = probe(&files[0]);
    assert_eq!((info.video().width, info.video().height), (640, 360), "{}", info.summary());
    assert_eq!(info.video_pts().len(), 4 * 25, "{}", info.summary());
    // Options on the command line override the profile's.
    let run = Proc::spawn("tally", &mut tally_in_home_cmd(&["stream", "--profile", "rehearsal", "--duration", "2", "--fps", "30"], home.path()))
        .wait_output(Duration::from_secs(60));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let files: Vec<_> = std::fs::read_dir(&records).expect("recordings").flatten().map(|e| e.path()).collect();
    assert_eq!(files.len(), 2, "a second broadcast gets its own file: {files:?}");
    let newest = files.iter().max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()).cloned().unwrap_or_default();
    assert_eq!(probe(&newest).video_pts().len(), 2 * 30);
}

/// A `profiles.toml` broken by hand (or by a disk): the CLI starts anyway
/// with no profiles, keeps the broken file aside, says where in one line
/// (without quoting it: it could hold a key), and the next save works.
#[test]
fn a_corrupt_profiles_file_is_set_aside_said_once_and_tally_goes_on() {
    let home = TestDir::new("profiles-corrupt");
    let config = home.join(".config/tally");
    std::fs::create_dir_all(&config).expect("mkdir");
    let broken = "[[profile]]\nname = \"show\"\nkey = live_SECRET_pasted_here\n";
    std::fs::write(config.join("profiles.toml"), broken).expect("write");

    let list = tally_in_home(&["profiles", "list"], home.path(), None);
    let err = ok(&list, "profiles list with a corrupt file");
    assert!(stdout(&list).contains("No profiles yet"), "{}", stdout(&list));
    let kept: Vec<std::path::PathBuf> = std::fs::read_dir(&config)
        .expect("ls")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("profiles.toml.broken-")))
        .collect();
    assert_eq!(kept.len(), 1, "the broken file is kept aside once: {kept:?}\n{err}");
    assert_eq!(std::fs::read_to_string(&kept[0]).expect("read"), broken, "kept as it was");
    let said: Vec<&str> = err.lines().filter(|l| l.contains("could not be read")).collect();
    assert_eq!(said.len(), 1, "said once:\n{err}");
    assert!(said[0].contains(&kept[0].display().to_string()) && said[0].contains("line 3"), "{err}");
    assert!(!err.contains("SECRET"), "the broken line is quoted:\n{err}");

    // Nothing more to say the second time, and saving works again.
    let again = tally_in_home(&["profiles", "list"], home.path(), None);
    assert!(!ok(&again, "profiles list again").contains("could not be read"));
    let add = tally_in_home(&["profiles", "add", "show", "--preset", "twitch", "--key-stdin"], home.path(), Some(&format!("{TWITCH_KEY}\n")));
    ok(&add, "profiles add after the corrupt file");
    assert!(stdout(&tally_in_home(&["profiles", "list"], home.path(), None)).contains("show"));
}

/// `tally ARGS` under `home` with the session bus `bus` and no forcing of
/// the key file: Tally decides where keys go, as on a desktop.
fn tally_with_bus(args: &[&str], home: &Path, bus: &str, runtime: &Path, input: &str) -> std::process::Output {
    let mut cmd = tally_in_home_cmd(args, home);
    cmd.env_remove("TALLY_SECRET_STORE").env("DBUS_SESSION_BUS_ADDRESS", bus).env("XDG_RUNTIME_DIR", runtime);
    Proc::spawn_with_input("tally", &mut cmd, Some(input)).wait_output(Duration::from_secs(60))
}

/// Keys go to the 0600 file when the keyring will not take them, the person
/// is told once per run (not once per key), `show` says where each key
/// really is, and the keys work.
fn keys_fall_back_to_the_file(home: &Path, bus: &str, runtime: &Path, notice: &str) {
    let add = tally_with_bus(&["profiles", "add", "show", "--preset", "twitch", "--key-stdin"], home, bus, runtime, &format!("{TWITCH_KEY}\n"));
    let first = strip_ansi(&ok(&add, "profiles add"));
    assert_eq!(first.matches(notice).count(), 1, "expected '{notice}' once:\n{first}");
    let more =
        tally_with_bus(&["profiles", "add-destination", "show", "--preset", "youtube", "--key-stdin"], home, bus, runtime, &format!("{YOUTUBE_KEY}\n"));
    let second = strip_ansi(&ok(&more, "profiles add-destination"));
    // Two keys in one run (an import): still said at most once.
    let export = home.join("show.toml");
    let export_arg = export.to_string_lossy().into_owned();
    ok(&tally_with_bus(&["profiles", "export", "show", "--include-keys", "-o", &export_arg], home, bus, runtime, ""), "export");
    ok(&tally_with_bus(&["profiles", "remove", "show"], home, bus, runtime, ""), "remove");
    let import = tally_with_bus(&["profiles", "import", &export_arg], home, bus, runtime, "");
    let third = strip_ansi(&ok(&import, "profiles import"));
    assert!(third.matches(notice).count() <= 1, "said more than once in one run:\n{third}");
    for text in [&first, &second, &third] {
        assert!(!text.contains(TWITCH_KEY) && !text.contains(YOUTUBE_KEY), "a key in the output:\n{text}");
    }

    let keys = home.join(".config/tally/keys.toml");
    assert_eq!(mode(&keys), 0o600, "the key file is readable only by its owner");
    let stored = std::fs::read_to_string(&keys).expect("keys.toml");
    assert!(stored.contains(TWITCH_KEY) && stored.contains(YOUTUBE_KEY), "both keys in the file");
    let show = tally_with_bus(&["profiles", "show", "show"], home, bus, runtime, "");
    let shown = stdout(&show);
    ok(&show, "profiles show");
    assert_eq!(shown.matches("key: set, in the key file").count(), 2, "show does not say where the keys are:\n{shown}");
    assert!(!shown.contains("in the OS keyring"), "{shown}");
}

#[test]
fn a_locked_keyring_falls_back_to_the_key_file_and_says_so_once() {
    let home = TestDir::new("keyring-locked");
    let keyring = PrivateKeyring::locked(home.path());
    keys_fall_back_to_the_file(home.path(), &keyring.address, &keyring.runtime, "the OS keyring refused the key (is it locked?)");
}

#[test]
fn no_keyring_at_all_falls_back_to_the_key_file_and_says_so_once() {
    let home = TestDir::new("keyring-missing");
    let runtime = home.join("run");
    std::fs::create_dir_all(&runtime).expect("runtime dir");
    // A session bus address where nothing listens: no Secret Service.
    let nowhere = format!("unix:path={}", home.join("no-bus").display());
    keys_fall_back_to_the_file(home.path(), &nowhere, &runtime, "no OS keyring is available");
}

/// The keyring's happy path: with an unlocked Secret Service, a key saved
/// by `profiles set-key` lands there (read back with secret-tool), not in
/// `keys.toml`, `show` says so, and `stream --profile` finds it there: nginx
/// accepts only that key as the stream name.
#[test]
fn an_unlocked_keyring_holds_a_key_set_with_set_key_and_going_live_finds_it() {
    const KEY: &str = "live_KeYrInG_0123456789";
    let home = TestDir::new("keyring-unlocked");
    let keyring = PrivateKeyring::unlocked(home.path());
    let (bus, runtime) = (keyring.address.as_str(), keyring.runtime.as_path());
    let nginx = NginxConfig::new().on_publish_allow(&[KEY]).start();
    let server = format!("rtmp://127.0.0.1:{}/live", nginx.port());
    ok(&tally_with_bus(&["profiles", "add", "show", "--url", &server, "--dest", "main", "--video", "test", "--audio", "sine", "--size", "320x180"], home.path(), bus, runtime, ""), "profiles add");
    let set = tally_with_bus(&["profiles", "set-key", "show", "main", "--key-stdin"], home.path(), bus, runtime, &format!("{KEY}\n"));
    let said = strip_ansi(&ok(&set, "profiles set-key"));
    assert!(!said.contains("keys.toml") && !said.contains("no OS keyring") && !said.contains(KEY), "{said}");

    let stored = keyring.tally_secrets();
    assert!(stored.contains(&format!("secret = {KEY}")) && stored.contains("attribute.username = show/main"), "the keyring holds:\n{stored}");
    assert!(!home.join(".config/tally/keys.toml").exists(), "a key file was written beside a working keyring");
    let shown = stdout(&tally_with_bus(&["profiles", "show", "show"], home.path(), bus, runtime, ""));
    assert!(shown.contains("key: set, in the OS keyring"), "{shown}");

    let live = tally_with_bus(&["stream", "--profile", "show", "--duration", "3"], home.path(), bus, runtime, "");
    let err = ok(&live, "stream --profile");
    assert!(!err.contains(KEY), "the key showed:\n{err}");
    assert_eq!(nginx.log_count(&format!("publish: name='{KEY}'")), 1, "nginx saw no publish with the stored key\n{}", nginx.diagnostics());
}
