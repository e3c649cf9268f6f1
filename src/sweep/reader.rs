//! A small cursor over one KDL node's arguments and properties that remembers what was read, so anything
//! left over is reported as an unexpected argument or an unknown property (with "did you mean").

use kdl::KdlNode;

use super::diag::{Diagnostics, Loc, SweepDiagnostic, did_you_mean};
use super::params::RawValue;
use super::source::ParsedFile;

pub struct NodeReader<'a> {
    pub file: &'a ParsedFile,
    pub node: &'a KdlNode,
    used: Vec<bool>,
}

impl<'a> NodeReader<'a> {
    pub fn new(file: &'a ParsedFile, node: &'a KdlNode) -> Self {
        NodeReader { file, node, used: vec![false; node.entries().len()] }
    }

    pub fn name(&self) -> &'a str {
        self.node.name().value()
    }

    /// The node's name, which diagnostics about the whole node point at.
    pub fn loc(&self) -> Loc {
        self.file.loc(self.node.name().span())
    }

    pub fn children(&self) -> &'a [KdlNode] {
        self.node.children().map_or(&[], |d| d.nodes())
    }

    /// All positional arguments.
    pub fn args(&mut self) -> Vec<(RawValue, Loc)> {
        let mut out = Vec::new();
        for (i, e) in self.node.entries().iter().enumerate() {
            if e.name().is_none() {
                self.used[i] = true;
                out.push((RawValue::from_kdl(e.value()), self.file.loc(e.span())));
            }
        }
        out
    }

    /// Exactly one positional argument, or an error naming what was expected.
    pub fn single_arg(&mut self, diags: &mut Diagnostics, what: &str) -> Option<(RawValue, Loc)> {
        let args = self.args();
        match args.len() {
            1 => args.into_iter().next(),
            0 => {
                diags.push(SweepDiagnostic::error(&self.loc(), format!("`{}` needs {what}", self.name())).label("value missing"));
                None
            }
            _ => {
                diags.push(
                    SweepDiagnostic::error(&args[1].1, format!("`{}` takes one value, {what}", self.name()))
                        .label("unexpected extra value"),
                );
                None
            }
        }
    }

    /// The property `key` (the last one when written twice, as KDL specifies).
    pub fn prop(&mut self, key: &str) -> Option<(RawValue, Loc)> {
        let mut found = None;
        for (i, e) in self.node.entries().iter().enumerate() {
            if e.name().is_some_and(|n| n.value() == key) {
                self.used[i] = true;
                found = Some((RawValue::from_kdl(e.value()), self.file.loc(e.span())));
            }
        }
        found
    }

    /// Every property, in order: (key, key location, value, entry location).
    pub fn props(&mut self) -> Vec<(String, Loc, RawValue, Loc)> {
        let mut out = Vec::new();
        for (i, e) in self.node.entries().iter().enumerate() {
            if let Some(name) = e.name() {
                self.used[i] = true;
                out.push((name.value().to_string(), self.file.loc(name.span()), RawValue::from_kdl(e.value()), self.file.loc(e.span())));
            }
        }
        out
    }

    /// Reports what was not read: stray arguments, and properties outside `known`.
    pub fn finish(self, diags: &mut Diagnostics, known: &[&str]) {
        let node_name = self.name();
        for (i, e) in self.node.entries().iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let loc = self.file.loc(e.span());
            match e.name() {
                None => {
                    diags.push(SweepDiagnostic::error(&loc, format!("`{node_name}` takes no argument here")).label("unexpected argument"))
                }
                Some(name) => {
                    let key = name.value();
                    let help = did_you_mean(key, known.iter().copied())
                        .or_else(|| (!known.is_empty()).then(|| format!("`{node_name}` accepts: {}", known.join(", "))));
                    diags.push(
                        SweepDiagnostic::error(&self.file.loc(name.span()), format!("unknown property `{key}` on `{node_name}`"))
                            .label("unknown property")
                            .maybe_help(help),
                    );
                }
            }
        }
    }

    /// Reports children on a node that takes none.
    pub fn no_children(&self, diags: &mut Diagnostics) {
        if let Some(first) = self.children().first() {
            diags.push(
                SweepDiagnostic::error(&self.file.loc(first.name().span()), format!("`{}` takes no child nodes", self.name()))
                    .label("unexpected child"),
            );
        }
    }
}
