//! Labels a few flows with libnkclass, from Rust, through the C interface
//! (csrc/include/nkclass/nkclass.h) declared by hand below: loads a
//! compiled ruleset, passes the flows as column arrays and prints one
//! tab-separated line per flow: its columns, then its labels.
//!
//!     classify RULES.nkc
//!
//! RULES.nkc comes from `nkclass rules compile -o RULES.nkc`.
use std::ffi::{CStr, CString};
use std::net::Ipv4Addr;
use std::os::raw::{c_char, c_int, c_void};
use std::process::ExitCode;
use std::ptr;

// ------------------------------------------------------------ nkclass.h

/// NK_ABI_VERSION_MAJOR of the header these declarations follow.
const NK_ABI_VERSION_MAJOR: u32 = 1;
const NK_OK: c_int = 0;

#[repr(C)]
struct NkRuleset {
    _opaque: [u8; 0],
}

#[repr(C)]
struct NkClassifier {
    _opaque: [u8; 0],
}

/// nk_flow_columns: n flows as columns; absent columns are null.
#[repr(C)]
struct NkFlowColumns {
    n: usize,
    src_ip4: *const u32,
    src_ip6: *const u8,
    dst_ip4: *const u32,
    dst_ip6: *const u8,
    src_port: *const u16,
    dst_port: *const u16,
    protocol: *const u8,
    src_payload: *const u8,
    src_payload_offsets: *const i64,
    dst_payload: *const u8,
    dst_payload_offsets: *const i64,
    ts_start: *const i64,
    ts_end: *const i64,
    packets: *const u64,
    bytes: *const u64,
    tcp_flags: *const u8,
    src_as: *const u32,
    dst_as: *const u32,
}

/// nk_labels: where the labels go, n values per column.
#[repr(C)]
struct NkLabels {
    path: *mut u16,
    side: *mut u8,
    service: *mut u32,
    app: *mut u8,
    activity: *mut u8,
    evidence: *mut u16,
    confidence: *mut u8,
    peer_as: *mut u32,
    peer_org: *mut u32,
}

extern "C" {
    fn nk_abi_version() -> u32;
    fn nk_last_error() -> *const c_char;
    fn nk_ruleset_load(path: *const c_char, out: *mut *mut NkRuleset) -> c_int;
    fn nk_ruleset_free(rules: *mut NkRuleset);
    fn nk_ruleset_path_name(rules: *const NkRuleset, code: u32) -> *const c_char;
    fn nk_ruleset_service_name(rules: *const NkRuleset, code: u32) -> *const c_char;
    fn nk_ruleset_org_name(rules: *const NkRuleset, code: u32) -> *const c_char;
    fn nk_classifier_new(rules: *const NkRuleset, out: *mut *mut NkClassifier) -> c_int;
    fn nk_classifier_free(classifier: *mut NkClassifier);
    fn nk_classify(
        classifier: *const NkClassifier,
        flows: *const NkFlowColumns,
        cache: *mut c_void,
        out: *const NkLabels,
    ) -> c_int;
    fn nk_app_name(code: u32) -> *const c_char;
    fn nk_activity_name(code: u32) -> *const c_char;
    fn nk_side_name(code: u32) -> *const c_char;
    fn nk_confidence_name(code: u32) -> *const c_char;
    fn nk_evidence_text(evidence: u16, buffer: *mut c_char, capacity: usize) -> usize;
}

// ------------------------------------------------------------ safe handles

/// The message of the last failing call on this thread.
fn last_error() -> String {
    unsafe { CStr::from_ptr(nk_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// A name the library returns (static, or owned by a ruleset that
/// outlives the call); "?" for a code it does not know.
fn text(name: *const c_char) -> String {
    if name.is_null() {
        return "?".to_string();
    }
    unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned()
}

struct Ruleset(*mut NkRuleset);

impl Ruleset {
    fn load(path: &str) -> Result<Ruleset, String> {
        let c_path = CString::new(path).map_err(|_| format!("{path}: a NUL byte in the path"))?;
        let mut rules = ptr::null_mut();
        if unsafe { nk_ruleset_load(c_path.as_ptr(), &mut rules) } != NK_OK {
            return Err(last_error());
        }
        Ok(Ruleset(rules))
    }
}

impl Drop for Ruleset {
    fn drop(&mut self) {
        unsafe { nk_ruleset_free(self.0) }
    }
}

struct Classifier(*mut NkClassifier);

impl Classifier {
    fn new(rules: &Ruleset) -> Result<Classifier, String> {
        let mut classifier = ptr::null_mut();
        if unsafe { nk_classifier_new(rules.0, &mut classifier) } != NK_OK {
            return Err(last_error());
        }
        Ok(Classifier(classifier))
    }
}

impl Drop for Classifier {
    fn drop(&mut self) {
        unsafe { nk_classifier_free(self.0) }
    }
}

/// Flows as columns (IPv4 addresses as host-order u32, times in ms since
/// the epoch, UTC).
struct Flows {
    src_ip: Vec<u32>,
    dst_ip: Vec<u32>,
    src_port: Vec<u16>,
    dst_port: Vec<u16>,
    protocol: Vec<u8>,
    ts_start: Vec<i64>,
}

struct Labels {
    path: Vec<u16>,
    side: Vec<u8>,
    service: Vec<u32>,
    app: Vec<u8>,
    activity: Vec<u8>,
    evidence: Vec<u16>,
    confidence: Vec<u8>,
    peer_as: Vec<u32>,
    peer_org: Vec<u32>,
}

fn classify(classifier: &Classifier, flows: &Flows) -> Result<Labels, String> {
    let n = flows.src_ip.len();
    for (name, len) in [
        ("dst_ip", flows.dst_ip.len()),
        ("src_port", flows.src_port.len()),
        ("dst_port", flows.dst_port.len()),
        ("protocol", flows.protocol.len()),
        ("ts_start", flows.ts_start.len()),
    ] {
        if len != n {
            return Err(format!("{name} has {len} values, src_ip {n}"));
        }
    }
    let columns = NkFlowColumns {
        n,
        src_ip4: flows.src_ip.as_ptr(),
        src_ip6: ptr::null(),
        dst_ip4: flows.dst_ip.as_ptr(),
        dst_ip6: ptr::null(),
        src_port: flows.src_port.as_ptr(),
        dst_port: flows.dst_port.as_ptr(),
        protocol: flows.protocol.as_ptr(),
        src_payload: ptr::null(),
        src_payload_offsets: ptr::null(),
        dst_payload: ptr::null(),
        dst_payload_offsets: ptr::null(),
        ts_start: flows.ts_start.as_ptr(),
        ts_end: ptr::null(),
        packets: ptr::null(),
        bytes: ptr::null(),
        tcp_flags: ptr::null(),
        src_as: ptr::null(),
        dst_as: ptr::null(),
    };
    let mut labels = Labels {
        path: vec![0; n],
        side: vec![0; n],
        service: vec![0; n],
        app: vec![0; n],
        activity: vec![0; n],
        evidence: vec![0; n],
        confidence: vec![0; n],
        peer_as: vec![0; n],
        peer_org: vec![0; n],
    };
    let out = NkLabels {
        path: labels.path.as_mut_ptr(),
        side: labels.side.as_mut_ptr(),
        service: labels.service.as_mut_ptr(),
        app: labels.app.as_mut_ptr(),
        activity: labels.activity.as_mut_ptr(),
        evidence: labels.evidence.as_mut_ptr(),
        confidence: labels.confidence.as_mut_ptr(),
        peer_as: labels.peer_as.as_mut_ptr(),
        peer_org: labels.peer_org.as_mut_ptr(),
    };
    if unsafe { nk_classify(classifier.0, &columns, ptr::null_mut(), &out) } != NK_OK {
        return Err(last_error());
    }
    Ok(labels)
}

fn evidence_text(evidence: u16) -> String {
    let mut buffer = [0 as c_char; 128];
    unsafe { nk_evidence_text(evidence, buffer.as_mut_ptr(), buffer.len()) };
    text(buffer.as_ptr())
}

// ------------------------------------------------------------ the example

/// A few flows of the default ruleset's watched paths (2019-05-01 UTC on).
fn example_flows() -> Flows {
    let flows: [(Ipv4Addr, Ipv4Addr, u16, u16, u8); 6] = [
        (
            [175, 45, 176, 9].into(),
            [192, 0, 2, 10].into(),
            50000,
            3333,
            6,
        ),
        (
            [10, 0, 0, 1].into(),
            [175, 45, 176, 71].into(),
            40000,
            80,
            6,
        ),
        ([210, 52, 109, 5].into(), [8, 8, 8, 8].into(), 51000, 53, 17),
        ([77, 94, 35, 20].into(), [1, 1, 1, 1].into(), 55000, 443, 6),
        (
            [175, 45, 176, 12].into(),
            [185, 220, 101, 1].into(),
            60000,
            9001,
            6,
        ),
        (
            [175, 45, 177, 3].into(),
            [203, 0, 113, 9].into(),
            61000,
            1194,
            17,
        ),
    ];
    const MAY_2019: i64 = 1_556_668_800_000;
    Flows {
        src_ip: flows.iter().map(|f| u32::from(f.0)).collect(),
        dst_ip: flows.iter().map(|f| u32::from(f.1)).collect(),
        src_port: flows.iter().map(|f| f.2).collect(),
        dst_port: flows.iter().map(|f| f.3).collect(),
        protocol: flows.iter().map(|f| f.4).collect(),
        ts_start: (0..flows.len() as i64)
            .map(|i| MAY_2019 + i * 60_000)
            .collect(),
    }
}

fn run(rules_path: &str) -> Result<(), String> {
    let abi = unsafe { nk_abi_version() };
    if abi >> 16 != NK_ABI_VERSION_MAJOR {
        return Err(format!(
            "libnkclass has ABI {}.{}, these declarations follow {}.x",
            abi >> 16,
            abi & 0xffff,
            NK_ABI_VERSION_MAJOR
        ));
    }
    let rules = Ruleset::load(rules_path)?;
    let classifier = Classifier::new(&rules)?;
    let flows = example_flows();
    let labels = classify(&classifier, &flows)?;
    println!(
        "#ts_start\tsrc_ip\tdst_ip\tsrc_port\tdst_port\tprotocol\tpath\tside\tservice\tapp\t\
         activity\tevidence\tconfidence\tpeer_as\tpeer_org"
    );
    for i in 0..flows.src_ip.len() {
        let r = rules.0 as *const NkRuleset;
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            flows.ts_start[i],
            Ipv4Addr::from(flows.src_ip[i]),
            Ipv4Addr::from(flows.dst_ip[i]),
            flows.src_port[i],
            flows.dst_port[i],
            flows.protocol[i],
            text(unsafe { nk_ruleset_path_name(r, u32::from(labels.path[i])) }),
            text(unsafe { nk_side_name(u32::from(labels.side[i])) }),
            text(unsafe { nk_ruleset_service_name(r, labels.service[i]) }),
            text(unsafe { nk_app_name(u32::from(labels.app[i])) }),
            text(unsafe { nk_activity_name(u32::from(labels.activity[i])) }),
            evidence_text(labels.evidence[i]),
            text(unsafe { nk_confidence_name(u32::from(labels.confidence[i])) }),
            labels.peer_as[i],
            // Without the AS stage peer_org is 0 and has no name: print "".
            if labels.peer_org[i] == 0 {
                String::new()
            } else {
                text(unsafe { nk_ruleset_org_name(r, labels.peer_org[i]) })
            },
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 2 {
        eprintln!(
            "usage: {} RULES.nkc",
            args.first().map_or("classify", String::as_str)
        );
        return ExitCode::from(2);
    }
    match run(&args[1]) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("classify: {}: {message}", args[1]);
            ExitCode::FAILURE
        }
    }
}
