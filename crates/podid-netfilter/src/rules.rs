//! The pure half: what the `aad-metadata` chain must look like, how to read what the kernel has, and
//! the restore script that turns one into the other.
//!
//! Nothing here runs a process. The IO half ([`crate::Netfilter`]) lists a table, hands the text to
//! [`TableListing::parse`], asks [`EnsurePlan::new`] what is wrong, and feeds
//! [`EnsurePlan::restore_script`] to `iptables-restore --noflush`.
//!
//! Rules are compared semantically, not textually: [`Rule::parse`] normalises the spellings that
//! differ between iptables-legacy, iptables-nft and iptables versions (`-d 1.2.3.4` vs
//! `-d 1.2.3.4/32`, `--destination-port` vs `--dport`, `-p 6` vs `-p tcp`, an explicit `-m tcp`
//! or an implicit protocol match, old-style `-s ! addr` negation, counters, option order inside
//! one match module). A false "different" only costs one harmless atomic rewrite; a false "equal"
//! would leave a wrong rule in place, so anything the parser does not understand compares unequal.

use std::fmt;
use std::net::Ipv4Addr;

// === constants ===

/// The custom chain name. Fixed by upstream NMI: upgrades and cleanup depend on it.
pub const CHAIN: &str = "aad-metadata";
/// The table holding [`CHAIN`].
pub const NAT_TABLE: &str = "nat";
/// The built-in chain that jumps to [`CHAIN`] from position 1.
pub const PREROUTING: &str = "PREROUTING";
/// The exact jump line as `iptables -t nat -S PREROUTING` prints it.
pub const JUMP_LINE: &str = "-A PREROUTING -j aad-metadata";
/// Logged (info) whenever the chain is (re)written; upstream NMI's wording, which people grep for.
pub const FLUSH_LOG_MESSAGE: &str = "flushing iptables to add aad-metadata custom chains";
/// Source excluded from interception so the agent's own upstream IMDS calls are not looped back.
pub const LOOPBACK_SOURCE_CIDR: &str = "127.0.0.1/32";
/// Upstream `--metadata-ip` default.
pub const DEFAULT_METADATA_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// Upstream `--metadata-port` default.
pub const DEFAULT_METADATA_PORT: u16 = 80;
/// Upstream `--nmi-port` default.
pub const DEFAULT_NMI_PORT: u16 = 2579;
/// The options that belong to no match module (the "core" of an iptables rule).
const CORE_OPTIONS: [&str; 6] = ["-s", "-d", "-p", "-i", "-o", "-f"];
/// Options whose value is mandatory; a missing one makes the line unparseable.
const VALUE_REQUIRED_OPTIONS: [&str; 8] = ["-s", "-d", "-p", "-i", "-o", "-m", "-j", "-g"];
/// Chains kube's iptables-wrapper treats as proof that kubelet picked this backend (mangle table).
const KUBE_HINT_CHAINS: [&str; 2] = ["KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"];

// === ChainConfig ===

/// What the interception chain redirects: `metadata_ip:metadata_port` to `target_ip:target_port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChainConfig {
    /// `--metadata-ip` (169.254.169.254).
    pub metadata_ip: Ipv4Addr,
    /// `--metadata-port` (80).
    pub metadata_port: u16,
    /// The DNAT destination: `--nmi-listen-address`, or 127.0.0.1 when that is 0.0.0.0.
    pub target_ip: Ipv4Addr,
    /// `--nmi-port` (2579).
    pub target_port: u16,
}

/// A [`ChainConfig`] that cannot be written as a rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A port of 0 cannot be matched or DNATed to.
    #[error("{field} must be between 1 and 65535, got 0")]
    ZeroPort {
        /// `metadata_port` or `target_port` (flags `--metadata-port` / `--nmi-port`).
        field: &'static str,
    },
    /// 0.0.0.0 is no address to redirect to or intercept.
    #[error(
        "{field} must be a concrete IPv4 address, got 0.0.0.0 (use ChainConfig::from_listen_address, which maps 0.0.0.0 to 127.0.0.1)"
    )]
    UnspecifiedAddress {
        /// `metadata_ip` or `target_ip` (flags `--metadata-ip` / `--nmi-listen-address`).
        field: &'static str,
    },
}

impl Default for ChainConfig {
    /// Upstream defaults: 169.254.169.254:80 -> 127.0.0.1:2579.
    fn default() -> Self {
        Self::from_listen_address(
            DEFAULT_METADATA_IP,
            DEFAULT_METADATA_PORT,
            Ipv4Addr::LOCALHOST,
            DEFAULT_NMI_PORT,
        )
    }
}

impl ChainConfig {
    /// Builds the config the way upstream NMI does: a `listen_address` of 0.0.0.0 redirects to 127.0.0.1.
    #[must_use]
    pub fn from_listen_address(
        metadata_ip: Ipv4Addr,
        metadata_port: u16,
        listen_address: Ipv4Addr,
        nmi_port: u16,
    ) -> Self {
        let target_ip = if listen_address.is_unspecified() {
            Ipv4Addr::LOCALHOST
        } else {
            listen_address
        };
        Self {
            metadata_ip,
            metadata_port,
            target_ip,
            target_port: nmi_port,
        }
    }

    /// Checks that the config can be written as a rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.metadata_port == 0 {
            return Err(ConfigError::ZeroPort {
                field: "metadata_port",
            });
        }
        if self.target_port == 0 {
            return Err(ConfigError::ZeroPort {
                field: "target_port",
            });
        }
        if self.metadata_ip.is_unspecified() {
            return Err(ConfigError::UnspecifiedAddress {
                field: "metadata_ip",
            });
        }
        if self.target_ip.is_unspecified() {
            return Err(ConfigError::UnspecifiedAddress { field: "target_ip" });
        }
        Ok(())
    }

    /// The DNAT rule's arguments after `-A aad-metadata`, in the order `iptables -S` prints them.
    #[must_use]
    pub fn dnat_rule_spec(&self) -> String {
        format!(
            "! -s {LOOPBACK_SOURCE_CIDR} -d {}/32 -p tcp -m tcp --dport {} -j DNAT --to-destination {}:{}",
            self.metadata_ip, self.metadata_port, self.target_ip, self.target_port
        )
    }

    /// The exact `iptables -t nat -S aad-metadata` output of a correct chain, one line per element.
    #[must_use]
    pub fn chain_lines(&self) -> [String; 3] {
        [
            format!("-N {CHAIN}"),
            format!("-A {CHAIN} {}", self.dnat_rule_spec()),
            format!("-A {CHAIN} -j RETURN"),
        ]
    }

    /// The two rules the chain must hold, in order, in comparable form.
    #[must_use]
    pub fn desired_rules(&self) -> [Rule; 2] {
        let dnat = Rule {
            chain: CHAIN.to_owned(),
            core: vec![
                Opt::new("-s", true, &[LOOPBACK_SOURCE_CIDR]),
                Opt::new("-d", false, &[&format!("{}/32", self.metadata_ip)]),
                Opt::new("-p", false, &["tcp"]),
            ],
            modules: vec![MatchBlock {
                module: "tcp".to_owned(),
                opts: vec![Opt::new(
                    "--dport",
                    false,
                    &[&self.metadata_port.to_string()],
                )],
            }],
            target: Some(Target {
                verb: Verb::Jump,
                name: "DNAT".to_owned(),
                opts: vec![Opt::new(
                    "--to-destination",
                    false,
                    &[&format!("{}:{}", self.target_ip, self.target_port)],
                )],
            }),
        };
        let ret = Rule {
            chain: CHAIN.to_owned(),
            core: Vec::new(),
            modules: Vec::new(),
            target: Some(Target {
                verb: Verb::Jump,
                name: "RETURN".to_owned(),
                opts: Vec::new(),
            }),
        };
        [dnat.normalized(), ret.normalized()]
    }
}

// === parse errors ===

/// Why one rule line could not be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// A `"` was opened and never closed.
    #[error("unterminated double quote")]
    UnterminatedQuote,
    /// The line does not start with `-A <chain>`.
    #[error("a rule line must start with `-A <chain>`")]
    NotAnAppend,
    /// An option that needs a value had none.
    #[error("option `{option}` needs a value")]
    MissingValue {
        /// The option as written.
        option: String,
    },
    /// `!` not followed by an option (or doubled).
    #[error("`!` must be followed by an option")]
    DanglingNegation,
    /// A bare word where an option was expected.
    #[error("unexpected word `{word}` where an option was expected")]
    StrayValue {
        /// The word.
        word: String,
    },
}

/// Why a listing (`iptables -S` or `iptables-save` output) could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A line that is none of the shapes iptables prints.
    #[error(
        "line {line}: unexpected `{text}` (want -P, -N, -A, :chain, *table, COMMIT or a # comment)"
    )]
    UnexpectedLine {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A `-A`/`-N`/`-P`/`:` line without a chain name.
    #[error("line {line}: `{text}` names no chain")]
    MissingChain {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// An `iptables-save` rule or chain line before any `*table` header.
    #[error("line {line}: `{text}` appears outside a `*table` section")]
    OutsideTable {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
}

// === Rule ===

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Opt {
    name: String,
    negated: bool,
    values: Vec<String>,
}

impl Opt {
    fn new(name: &str, negated: bool, values: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            negated,
            values: values.iter().map(|v| canonical_value(name, v)).collect(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct MatchBlock {
    module: String,
    opts: Vec<Opt>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Verb {
    Jump,
    Goto,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Target {
    verb: Verb,
    name: String,
    opts: Vec<Opt>,
}

/// One iptables rule in normalised, comparable form. Equality is semantic: two print forms of the
/// same rule compare equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    chain: String,
    core: Vec<Opt>,
    modules: Vec<MatchBlock>,
    target: Option<Target>,
}

#[derive(Clone, Debug)]
struct Token {
    text: String,
    quoted: bool,
}

impl Token {
    fn is_bang(&self) -> bool {
        !self.quoted && self.text == "!"
    }

    fn is_option(&self) -> bool {
        if self.quoted {
            return false;
        }
        let mut chars = self.text.chars();
        chars.next() == Some('-') && chars.next().is_some_and(|c| !c.is_ascii_digit())
    }

    fn is_value(&self) -> bool {
        !self.is_bang() && !self.is_option()
    }
}

/// Splits a line the way iptables-restore does: whitespace separates words, `"..."` groups a word
/// and `\` escapes the next character inside quotes.
fn tokenize(line: &str) -> Result<Vec<Token>, RuleError> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(tokens);
        }
        let mut text = String::new();
        let mut quoted = false;
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c != '"' {
                text.push(c);
                continue;
            }
            quoted = true;
            loop {
                match chars.next() {
                    None => return Err(RuleError::UnterminatedQuote),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(escaped) => text.push(escaped),
                        None => return Err(RuleError::UnterminatedQuote),
                    },
                    Some(other) => text.push(other),
                }
            }
        }
        tokens.push(Token { text, quoted });
    }
}

/// Maps long option spellings to the short ones `iptables -S` prints.
fn canonical_option(name: &str) -> &str {
    match name {
        "--source" | "--src" => "-s",
        "--destination" | "--dst" => "-d",
        "--protocol" => "-p",
        "--in-interface" => "-i",
        "--out-interface" => "-o",
        "--fragment" => "-f",
        "--match" => "-m",
        "--jump" => "-j",
        "--goto" => "-g",
        "--set-counters" => "-c",
        "--destination-port" => "--dport",
        "--source-port" => "--sport",
        other => other,
    }
}

fn canonical_value(option: &str, value: &str) -> String {
    match option {
        "-s" | "-d" => canonical_cidr(value),
        "-p" => canonical_protocol(value),
        "--dport" | "--sport" => value
            .parse::<u16>()
            .map_or_else(|_| value.to_owned(), |p| p.to_string()),
        _ => value.to_owned(),
    }
}

fn canonical_protocol(value: &str) -> String {
    let lower = value.to_ascii_lowercase();
    match lower.as_str() {
        "1" => "icmp".to_owned(),
        "6" => "tcp".to_owned(),
        "17" => "udp".to_owned(),
        "132" => "sctp".to_owned(),
        "136" => "udplite".to_owned(),
        _ => lower,
    }
}

/// `1.2.3.4` -> `1.2.3.4/32`; `10.1.2.3/8` -> `10.0.0.0/8`; `/255.255.0.0` -> `/16`.
/// Anything else is kept verbatim (and so compares unequal to a canonical address).
fn canonical_cidr(value: &str) -> String {
    let (addr, mask) = match value.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (value, None),
    };
    let Ok(ip) = addr.parse::<Ipv4Addr>() else {
        return value.to_owned();
    };
    let prefix = match mask {
        None => 32,
        Some(m) => {
            if let Ok(len) = m.parse::<u32>() {
                if len > 32 {
                    return value.to_owned();
                }
                len
            } else if let Ok(dotted) = m.parse::<Ipv4Addr>() {
                let bits = u32::from(dotted);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return value.to_owned();
                }
                bits.leading_ones()
            } else {
                return value.to_owned();
            }
        }
    };
    let mask_bits = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    let network = Ipv4Addr::from(u32::from(ip) & mask_bits);
    format!("{network}/{prefix}")
}

/// Where the next option lands while parsing.
enum Slot {
    Orphan,
    Module(usize),
    Target,
}

impl Rule {
    /// Parses one `-A <chain> ...` line as printed by `iptables -S` or `iptables-save`
    /// (a leading `[packets:bytes]` counter is ignored).
    pub fn parse(line: &str) -> Result<Self, RuleError> {
        let tokens = tokenize(strip_counters(line.trim()))?;
        let mut iter = tokens.iter();
        match iter.next() {
            Some(t) if !t.quoted && (t.text == "-A" || t.text == "--append") => {}
            _ => return Err(RuleError::NotAnAppend),
        }
        let chain = match iter.next() {
            Some(t) if t.is_value() => t.text.clone(),
            _ => return Err(RuleError::NotAnAppend),
        };
        let rest: Vec<&Token> = iter.collect();

        let mut core = Vec::new();
        let mut orphans = Vec::new();
        let mut modules: Vec<MatchBlock> = Vec::new();
        let mut target: Option<Target> = None;
        let mut slot = Slot::Orphan;
        let mut negate_next = false;
        let mut i = 0;
        while let Some(tok) = rest.get(i) {
            i += 1;
            if tok.is_bang() {
                if negate_next {
                    return Err(RuleError::DanglingNegation);
                }
                negate_next = true;
                continue;
            }
            if !tok.is_option() {
                return Err(RuleError::StrayValue {
                    word: tok.text.clone(),
                });
            }
            let name = canonical_option(&tok.text).to_owned();
            let mut negated = std::mem::take(&mut negate_next);
            // Old-style negation: `-s ! 1.2.3.4`.
            if let (Some(bang), Some(next)) = (rest.get(i), rest.get(i + 1))
                && bang.is_bang()
                && next.is_value()
            {
                negated = true;
                i += 1;
            }
            let mut values = Vec::new();
            while let Some(v) = rest.get(i).filter(|t| t.is_value()) {
                values.push(v.text.clone());
                i += 1;
            }
            if values.is_empty() && VALUE_REQUIRED_OPTIONS.contains(&name.as_str()) {
                return Err(RuleError::MissingValue {
                    option: tok.text.clone(),
                });
            }
            match name.as_str() {
                "-c" => {}
                "-m" => {
                    if negated {
                        return Err(RuleError::DanglingNegation);
                    }
                    let module = values.join(" ");
                    modules.push(MatchBlock {
                        module,
                        opts: Vec::new(),
                    });
                    slot = Slot::Module(modules.len() - 1);
                }
                "-j" | "-g" => {
                    if negated {
                        return Err(RuleError::DanglingNegation);
                    }
                    target = Some(Target {
                        verb: if name == "-j" { Verb::Jump } else { Verb::Goto },
                        name: values.join(" "),
                        opts: Vec::new(),
                    });
                    slot = Slot::Target;
                }
                _ => {
                    let values = values.iter().map(|v| canonical_value(&name, v)).collect();
                    let opt = Opt {
                        name,
                        negated,
                        values,
                    };
                    if CORE_OPTIONS.contains(&opt.name.as_str()) {
                        core.push(opt);
                    } else {
                        match slot {
                            Slot::Orphan => orphans.push(opt),
                            Slot::Module(idx) => {
                                if let Some(block) = modules.get_mut(idx) {
                                    block.opts.push(opt);
                                }
                            }
                            Slot::Target => {
                                if let Some(t) = target.as_mut() {
                                    t.opts.push(opt);
                                }
                            }
                        }
                    }
                }
            }
        }
        if negate_next {
            return Err(RuleError::DanglingNegation);
        }
        if !orphans.is_empty() {
            modules.push(MatchBlock {
                module: String::new(),
                opts: orphans,
            });
        }
        Ok(Self {
            chain,
            core,
            modules,
            target,
        }
        .normalized())
    }

    /// Sorts options and merges the protocol's implicit match module (`-p tcp --dport 80` and
    /// `-p tcp -m tcp --dport 80` are the same rule).
    fn normalized(mut self) -> Self {
        let protocol = self
            .core
            .iter()
            .find(|o| o.name == "-p" && !o.negated)
            .and_then(|o| o.values.first().cloned());
        if let Some(proto) = protocol {
            let mut merged = Vec::new();
            let mut found = false;
            self.modules.retain_mut(|block| {
                if block.module.is_empty() || block.module == proto {
                    merged.append(&mut block.opts);
                    found = true;
                    false
                } else {
                    true
                }
            });
            if found {
                self.modules.push(MatchBlock {
                    module: proto,
                    opts: merged,
                });
            }
        }
        self.core.sort();
        for block in &mut self.modules {
            block.opts.sort();
        }
        self.modules.sort();
        if let Some(t) = self.target.as_mut() {
            t.opts.sort();
        }
        self
    }

    /// The chain the rule is appended to.
    #[must_use]
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// The `-j`/`-g` target, if any.
    #[must_use]
    pub fn target(&self) -> Option<&str> {
        self.target.as_ref().map(|t| t.name.as_str())
    }

    /// True for exactly `-A <any> -j <chain>`: no match, no target option, a jump (not a goto).
    #[must_use]
    pub fn is_plain_jump_to(&self, chain: &str) -> bool {
        self.core.is_empty()
            && self.modules.is_empty()
            && self
                .target
                .as_ref()
                .is_some_and(|t| t.verb == Verb::Jump && t.name == chain && t.opts.is_empty())
    }

    /// True when the rule jumps or goes to `chain` (with or without matches).
    #[must_use]
    pub fn refers_to(&self, chain: &str) -> bool {
        self.target.as_ref().is_some_and(|t| t.name == chain)
    }
}

fn strip_counters(line: &str) -> &str {
    if line.starts_with('[')
        && let Some(end) = line.find(']')
    {
        return line[end + 1..].trim_start();
    }
    line
}

// === listings ===

/// One rule line of a listing: the text as printed and its parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleLine {
    /// The `-A <chain> ...` line as printed (trimmed, counters removed).
    pub text: String,
    /// The normalised rule, or why it could not be understood.
    pub rule: Result<Rule, RuleError>,
}

/// One chain of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainListing {
    /// Chain name.
    pub name: String,
    /// `ACCEPT`/`DROP` for built-in chains; `None` for user chains (`-N` or `:<name> -`).
    pub policy: Option<String>,
    /// Rules in kernel order (position = index + 1).
    pub rules: Vec<RuleLine>,
}

/// One table as printed by `iptables -t <table> -S [chain]` or one `*table` section of
/// `iptables-save`. Both iptables-legacy and iptables-nft print forms are accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableListing {
    chains: Vec<ChainListing>,
}

impl TableListing {
    /// Parses `-S` output (`-P`, `-N`, `-A` lines) or a save section (`:chain`, `-A`, `*table`,
    /// `COMMIT`). Comments and blank lines are skipped; a rule that cannot be understood is kept
    /// with its error (see [`RuleLine::rule`]); only a line of unknown shape is an error.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut listing = Self::default();
        for (idx, raw) in text.lines().enumerate() {
            listing.feed(idx + 1, raw)?;
        }
        Ok(listing)
    }

    fn feed(&mut self, line: usize, raw: &str) -> Result<(), ParseError> {
        let text = strip_counters(raw.trim());
        if text.is_empty() || text.starts_with('#') || text.starts_with('*') || text == "COMMIT" {
            return Ok(());
        }
        let missing_chain = || ParseError::MissingChain {
            line,
            text: text.to_owned(),
        };
        let mut words = text.split_whitespace();
        let first = words.next().unwrap_or_default();
        if let Some(name) = first.strip_prefix(':') {
            if name.is_empty() {
                return Err(missing_chain());
            }
            let policy = words.next().filter(|p| *p != "-").map(str::to_owned);
            self.chain_mut(name).policy = policy;
            return Ok(());
        }
        match first {
            "-P" | "--policy" => {
                let name = words.next().ok_or_else(missing_chain)?;
                let policy = words.next().map(str::to_owned);
                self.chain_mut(name).policy = policy;
            }
            "-N" | "--new-chain" => {
                let name = words.next().ok_or_else(missing_chain)?;
                self.chain_mut(name);
            }
            "-A" | "--append" => {
                let name = words.next().ok_or_else(missing_chain)?;
                let rule_line = RuleLine {
                    text: text.to_owned(),
                    rule: Rule::parse(text),
                };
                self.chain_mut(name).rules.push(rule_line);
            }
            _ => {
                return Err(ParseError::UnexpectedLine {
                    line,
                    text: text.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn chain_mut(&mut self, name: &str) -> &mut ChainListing {
        let idx = match self.chains.iter().position(|c| c.name == name) {
            Some(idx) => idx,
            None => {
                self.chains.push(ChainListing {
                    name: name.to_owned(),
                    policy: None,
                    rules: Vec::new(),
                });
                self.chains.len() - 1
            }
        };
        &mut self.chains[idx]
    }

    /// The named chain, if the listing declares it or has rules in it.
    #[must_use]
    pub fn chain(&self, name: &str) -> Option<&ChainListing> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// All chains, in first-seen order.
    #[must_use]
    pub fn chains(&self) -> &[ChainListing] {
        &self.chains
    }

    /// Every rule line outside `chain` whose target is `chain` (jump or goto, any matches).
    #[must_use]
    pub fn references_to(&self, chain: &str) -> Vec<&RuleLine> {
        self.chains
            .iter()
            .filter(|c| c.name != chain)
            .flat_map(|c| c.rules.iter())
            .filter(|r| r.rule.as_ref().is_ok_and(|rule| rule.refers_to(chain)))
            .collect()
    }

    /// The `aad-metadata` part of the listing in `-S` form, for diagnostics: `-N aad-metadata`,
    /// its rules, then every rule elsewhere that jumps to it.
    #[must_use]
    pub fn aad_metadata_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(chain) = self.chain(CHAIN) {
            out.push(format!("-N {CHAIN}"));
            out.extend(chain.rules.iter().map(|r| r.text.clone()));
        }
        out.extend(
            self.references_to(CHAIN)
                .into_iter()
                .map(|r| r.text.clone()),
        );
        out
    }
}

/// `iptables-save` output: one [`TableListing`] per `*table` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaveDump {
    tables: Vec<(String, TableListing)>,
}

impl SaveDump {
    /// Parses full `iptables-save` output (any number of tables).
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut dump = Self::default();
        let mut current: Option<usize> = None;
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let trimmed = raw.trim();
            if let Some(table) = trimmed.strip_prefix('*') {
                let table = table.trim().to_owned();
                current = Some(match dump.tables.iter().position(|(n, _)| *n == table) {
                    Some(i) => i,
                    None => {
                        dump.tables.push((table, TableListing::default()));
                        dump.tables.len() - 1
                    }
                });
                continue;
            }
            if trimmed == "COMMIT" {
                current = None;
                continue;
            }
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some(listing) = current.and_then(|i| dump.tables.get_mut(i)) else {
                return Err(ParseError::OutsideTable {
                    line,
                    text: trimmed.to_owned(),
                });
            };
            listing.1.feed(line, raw)?;
        }
        Ok(dump)
    }

    /// The named table's section, if present.
    #[must_use]
    pub fn table(&self, name: &str) -> Option<&TableListing> {
        self.tables.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

// === verdicts and plans ===

/// The state of the `aad-metadata` chain compared with [`ChainConfig::chain_lines`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainVerdict {
    /// The chain does not exist.
    Missing,
    /// Exactly the two desired rules, in order.
    Exact,
    /// It exists but holds something else.
    Differs {
        /// What is wrong first (rule text included, for the log).
        reason: String,
    },
}

/// Where `-A PREROUTING -j aad-metadata` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JumpVerdict {
    /// Once, at position 1.
    First,
    /// Absent.
    Missing,
    /// Present but not only at position 1 (elsewhere and/or duplicated); 1-based positions.
    Misplaced {
        /// Positions of every plain jump in PREROUTING.
        positions: Vec<usize>,
    },
}

/// Compares the listed `aad-metadata` chain with the desired rules.
#[must_use]
pub fn chain_verdict(listing: &TableListing, config: &ChainConfig) -> ChainVerdict {
    let Some(chain) = listing.chain(CHAIN) else {
        return ChainVerdict::Missing;
    };
    let want = config.desired_rules();
    let want_lines = config.chain_lines();
    if chain.rules.len() != want.len() {
        return ChainVerdict::Differs {
            reason: format!("chain has {} rules, want {}", chain.rules.len(), want.len()),
        };
    }
    for (idx, (have, want_rule)) in chain.rules.iter().zip(want.iter()).enumerate() {
        let want_text = want_lines.get(idx + 1).map_or("", String::as_str);
        match &have.rule {
            Err(e) => {
                return ChainVerdict::Differs {
                    reason: format!(
                        "rule {} `{}` is not understood ({e}), want `{want_text}`",
                        idx + 1,
                        have.text
                    ),
                };
            }
            Ok(rule) if rule != want_rule => {
                return ChainVerdict::Differs {
                    reason: format!("rule {} is `{}`, want `{want_text}`", idx + 1, have.text),
                };
            }
            Ok(_) => {}
        }
    }
    ChainVerdict::Exact
}

/// Finds the plain jump(s) to `aad-metadata` in PREROUTING.
#[must_use]
pub fn jump_verdict(listing: &TableListing) -> JumpVerdict {
    let positions: Vec<usize> = listing
        .chain(PREROUTING)
        .map(|c| {
            c.rules
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    r.rule
                        .as_ref()
                        .is_ok_and(|rule| rule.is_plain_jump_to(CHAIN))
                })
                .map(|(i, _)| i + 1)
                .collect()
        })
        .unwrap_or_default();
    match positions.as_slice() {
        [] => JumpVerdict::Missing,
        [1] => JumpVerdict::First,
        _ => JumpVerdict::Misplaced { positions },
    }
}

/// What [`crate::Netfilter::ensure`] will change, decided from one listing of the nat table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnsurePlan {
    /// The chain's state.
    pub chain: ChainVerdict,
    /// The jump's state.
    pub jump: JumpVerdict,
}

impl EnsurePlan {
    /// Decides from a nat-table listing.
    #[must_use]
    pub fn new(listing: &TableListing, config: &ChainConfig) -> Self {
        Self {
            chain: chain_verdict(listing, config),
            jump: jump_verdict(listing),
        }
    }

    /// Nothing to change.
    #[must_use]
    pub fn is_noop(&self) -> bool {
        self.chain == ChainVerdict::Exact && self.jump == JumpVerdict::First
    }

    /// The `iptables-restore --noflush` input that fixes everything in one atomic transaction, or
    /// `None` when nothing is wrong. The chain declaration `:aad-metadata - [0:0]` creates the
    /// chain or flushes it; the jump is deleted as often as it appears and re-inserted at 1, so
    /// there is never a moment without interception.
    #[must_use]
    pub fn restore_script(&self, config: &ChainConfig) -> Option<String> {
        if self.is_noop() {
            return None;
        }
        let mut script = format!("*{NAT_TABLE}\n");
        if self.chain != ChainVerdict::Exact {
            let [_, dnat, ret] = config.chain_lines();
            script.push_str(&format!(":{CHAIN} - [0:0]\n{dnat}\n{ret}\n"));
        }
        match &self.jump {
            JumpVerdict::First => {}
            JumpVerdict::Missing => {
                script.push_str(&format!("-I {PREROUTING} 1 -j {CHAIN}\n"));
            }
            JumpVerdict::Misplaced { positions } => {
                for _ in positions {
                    script.push_str(&format!("-D {PREROUTING} -j {CHAIN}\n"));
                }
                script.push_str(&format!("-I {PREROUTING} 1 -j {CHAIN}\n"));
            }
        }
        script.push_str("COMMIT\n");
        Some(script)
    }
}

/// What removing `aad-metadata` from one table means, decided from one listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovalPlan {
    /// Every rule elsewhere that jumps or goes to the chain (as printed), to be deleted first.
    pub references: Vec<String>,
    /// The chain exists and must be flushed and deleted.
    pub chain_present: bool,
}

impl RemovalPlan {
    /// Decides from a nat-table listing.
    #[must_use]
    pub fn new(listing: &TableListing) -> Self {
        Self {
            references: listing
                .references_to(CHAIN)
                .into_iter()
                .map(|r| r.text.clone())
                .collect(),
            chain_present: listing.chain(CHAIN).is_some(),
        }
    }

    /// Nothing to remove.
    #[must_use]
    pub fn is_noop(&self) -> bool {
        self.references.is_empty() && !self.chain_present
    }

    /// The `iptables-restore --noflush` input that removes everything atomically, or `None`.
    #[must_use]
    pub fn restore_script(&self) -> Option<String> {
        if self.is_noop() {
            return None;
        }
        let mut script = format!("*{NAT_TABLE}\n");
        for reference in &self.references {
            let spec = reference
                .strip_prefix("-A ")
                .or_else(|| reference.strip_prefix("--append "))
                .unwrap_or(reference);
            script.push_str(&format!("-D {spec}\n"));
        }
        if self.chain_present {
            script.push_str(&format!("-F {CHAIN}\n-X {CHAIN}\n"));
        }
        script.push_str("COMMIT\n");
        Some(script)
    }
}

// === backend choice ===

/// A resolved iptables backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// x_tables (`iptables-legacy`).
    Legacy,
    /// nf_tables (`iptables-nft`).
    Nft,
}

impl BackendKind {
    /// The other one.
    #[must_use]
    pub fn other(self) -> Self {
        match self {
            Self::Legacy => Self::Nft,
            Self::Nft => Self::Legacy,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Legacy => "legacy",
            Self::Nft => "nft",
        })
    }
}

/// What one backend's `iptables-save` says about who uses it (kube's iptables-wrapper heuristic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendEvidence {
    /// nat rules, not counting `aad-metadata` and jumps to it (our own leftovers must not vote).
    pub nat_rules: usize,
    /// kubelet's `KUBE-IPTABLES-HINT` / `KUBE-KUBELET-CANARY` chain exists in mangle.
    pub kube_hint: bool,
}

impl BackendEvidence {
    /// Reads the evidence from a full `iptables-save` dump.
    #[must_use]
    pub fn from_save(dump: &SaveDump) -> Self {
        let nat_rules = dump.table(NAT_TABLE).map_or(0, |nat| {
            nat.chains()
                .iter()
                .filter(|c| c.name != CHAIN)
                .flat_map(|c| c.rules.iter())
                .filter(|r| !r.rule.as_ref().is_ok_and(|rule| rule.refers_to(CHAIN)))
                .count()
        });
        let kube_hint = dump
            .table("mangle")
            .is_some_and(|m| KUBE_HINT_CHAINS.iter().any(|c| m.chain(c).is_some()));
        Self {
            nat_rules,
            kube_hint,
        }
    }
}

/// Picks the backend like kube's iptables-wrapper: the one kubelet marked with its hint chain if
/// only one is marked, else the one with more nat rules, nft on a tie (including both empty).
#[must_use]
pub fn choose_backend(legacy: &BackendEvidence, nft: &BackendEvidence) -> BackendKind {
    match (legacy.kube_hint, nft.kube_hint) {
        (true, false) => BackendKind::Legacy,
        (false, true) => BackendKind::Nft,
        _ if legacy.nat_rules > nft.nat_rules => BackendKind::Legacy,
        _ => BackendKind::Nft,
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
