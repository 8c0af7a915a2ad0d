//! A small XML tree over quick-xml that keeps every byte it does not edit: each node holds
//! the exact source text of its markup (start tag with its attributes and spacing, end tag,
//! character data with its entity references, comments, processing instructions, the
//! declaration), so writing an unedited tree gives back the input byte for byte. Edits
//! replace or insert whole nodes and indent what they insert like their neighbours.
//!
//! Parsing is strict: quick-xml's well-formedness checks (matching end tags, comments) plus
//! well-formed attributes, known entity references only (the five predefined ones and
//! character references; Jenkins writes no DTD), one root element and no text outside it.
//! Anything else is a [`Malformed`] error with a line and column.

use quick_xml::escape::{escape, unescape};
use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

/// Why a text is not a document this module accepts: where (1-based line and column, in
/// characters) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Element(Element),
    /// Character data as written (escaped; entity references included).
    Text(String),
    /// A CDATA section as written, `<![CDATA[...]]>`.
    CData(String),
    /// A comment, processing instruction, XML declaration or doctype, as written.
    Other(String),
}

/// An element: its start tag as written, its children and its end tag as written (`None`
/// for a self-closing `<name/>` that has no children).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    name: String,
    open: String,
    close: Option<String>,
    pub children: Vec<Node>,
}

/// A parsed document: the root element and the nodes before it (declaration, comments,
/// whitespace) and after it.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    /// A byte-order mark the input started with, written back as it was.
    bom: &'static str,
    before: Vec<Node>,
    root: Element,
    after: Vec<Node>,
}

impl Document {
    /// Parses `xml` (see the module doc for what is accepted).
    pub fn parse(xml: &str) -> Result<Self, Malformed> {
        let (bom, body) = match xml.strip_prefix('\u{feff}') {
            Some(rest) => ("\u{feff}", rest),
            None => ("", xml),
        };
        let mut reader = Reader::from_str(body);
        reader.config_mut().check_comments = true;
        // Open elements with the offset of their start tag.
        let mut stack: Vec<(Element, usize)> = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        loop {
            let start = position(reader.buffer_position());
            let event = reader
                .read_event()
                .map_err(|e| malformed(body, position(reader.error_position()), e.to_string()))?;
            let end = position(reader.buffer_position());
            let raw = body
                .get(start..end)
                .ok_or_else(|| malformed(body, start, "the parser lost its place".to_owned()))?;
            let at = |message: &str| malformed(body, start, message.to_owned());
            let node = match event {
                Event::Start(tag) => {
                    check_attributes(&tag).map_err(|m| at(&m))?;
                    let element = Element {
                        name: tag.name().into_inner().to_owned(),
                        open: raw.to_owned(),
                        close: Some(String::new()),
                        children: Vec::new(),
                    };
                    if stack.is_empty() && nodes.iter().any(|n| matches!(n, Node::Element(_))) {
                        return Err(at("more than one root element"));
                    }
                    stack.push((element, start));
                    continue;
                }
                Event::Empty(tag) => {
                    check_attributes(&tag).map_err(|m| at(&m))?;
                    if stack.is_empty() && nodes.iter().any(|n| matches!(n, Node::Element(_))) {
                        return Err(at("more than one root element"));
                    }
                    Node::Element(Element {
                        name: tag.name().into_inner().to_owned(),
                        open: raw.to_owned(),
                        close: None,
                        children: Vec::new(),
                    })
                }
                Event::End(_) => {
                    // quick-xml has checked that the name matches the open element.
                    let (mut element, _) =
                        stack.pop().ok_or_else(|| at("an end tag closes nothing"))?;
                    element.close = Some(raw.to_owned());
                    Node::Element(element)
                }
                Event::Text(_) => {
                    if stack.is_empty() && !raw.trim().is_empty() {
                        return Err(at("text outside the root element"));
                    }
                    Node::Text(raw.to_owned())
                }
                Event::GeneralRef(reference) => {
                    if stack.is_empty() {
                        return Err(at("an entity reference outside the root element"));
                    }
                    let known = reference
                        .resolve_char_ref()
                        .map_err(|e| at(&e.to_string()))?
                        .is_some()
                        || matches!(
                            reference.xml10_content().as_ref(),
                            "lt" | "gt" | "amp" | "apos" | "quot"
                        );
                    if !known {
                        return Err(at(&format!("unknown entity reference {raw}")));
                    }
                    Node::Text(raw.to_owned())
                }
                Event::CData(_) => {
                    if stack.is_empty() {
                        return Err(at("a CDATA section outside the root element"));
                    }
                    Node::CData(raw.to_owned())
                }
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) | Event::DocType(_) => {
                    Node::Other(raw.to_owned())
                }
                Event::Eof => break,
            };
            let siblings = match stack.last_mut() {
                Some((parent, _)) => &mut parent.children,
                None => &mut nodes,
            };
            push_merging_text(siblings, node);
        }
        if let Some((open, at)) = stack.last() {
            return Err(malformed(
                body,
                *at,
                format!("<{}> is never closed", open.name),
            ));
        }
        let mut before = Vec::new();
        let mut root = None;
        let mut after = Vec::new();
        for node in nodes {
            match (node, &root) {
                (Node::Element(e), None) => root = Some(e),
                (other, None) => before.push(other),
                (other, Some(_)) => after.push(other),
            }
        }
        let root = root.ok_or_else(|| malformed(body, body.len(), "no root element".to_owned()))?;
        let document = Document {
            bom,
            before,
            root,
            after,
        };
        if document.to_xml() != xml {
            // The tree is built from slices of the input, so this cannot happen; refuse
            // rather than write back a document that differs where nothing was edited.
            return Err(malformed(
                body,
                0,
                "the document does not read back unchanged".to_owned(),
            ));
        }
        Ok(document)
    }

    /// The root element.
    pub fn root(&self) -> &Element {
        &self.root
    }

    /// The root element, to edit.
    pub fn root_mut(&mut self) -> &mut Element {
        &mut self.root
    }

    /// The indentation one level adds, read from the root's first indented child (Jenkins
    /// writes two spaces); two spaces when the root has none.
    pub fn indent_unit(&self) -> String {
        let unit = self.root().child_indent_as_written().unwrap_or_default();
        if unit.is_empty() {
            "  ".to_owned()
        } else {
            unit
        }
    }

    /// The document as text: the input, byte for byte, except where it was edited.
    pub fn to_xml(&self) -> String {
        let mut out = String::from(self.bom);
        for node in &self.before {
            node.write(&mut out);
        }
        self.root.write(&mut out);
        for node in &self.after {
            node.write(&mut out);
        }
        out
    }
}

impl Node {
    fn write(&self, out: &mut String) {
        match self {
            Node::Element(e) => e.write(out),
            Node::Text(raw) | Node::CData(raw) | Node::Other(raw) => out.push_str(raw),
        }
    }

    fn is_whitespace(&self) -> bool {
        matches!(self, Node::Text(t) if t.trim().is_empty())
    }
}

impl Element {
    /// A new element `<name></name>` (names greg writes need no escaping).
    pub fn new(name: &str) -> Self {
        Element {
            name: name.to_owned(),
            open: format!("<{name}>"),
            close: Some(format!("</{name}>")),
            children: Vec::new(),
        }
    }

    /// A new element holding `text` (escaped): `<name>text</name>`.
    pub fn leaf(name: &str, text: &str) -> Self {
        let mut e = Element::new(name);
        if !text.is_empty() {
            e.children.push(Node::Text(escape(text).into_owned()));
        }
        e
    }

    /// A new element holding `children`, to be indented by [`Element::insert`].
    pub fn with_children(name: &str, children: Vec<Element>) -> Self {
        let mut e = Element::new(name);
        e.children = children.into_iter().map(Node::Element).collect();
        e
    }

    /// The qualified name, as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child elements with their indexes in [`children`](Element::children).
    pub fn elements(&self) -> impl Iterator<Item = (usize, &Element)> {
        self.children
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match n {
                Node::Element(e) => Some((i, e)),
                _ => None,
            })
    }

    /// The index of the first child element named `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.elements()
            .find(|(_, e)| e.name == name)
            .map(|(i, _)| i)
    }

    /// The first child element named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements()
            .find(|(_, e)| e.name == name)
            .map(|(_, e)| e)
    }

    /// The child element at `index`, to edit.
    pub fn element_mut(&mut self, index: usize) -> Option<&mut Element> {
        match self.children.get_mut(index) {
            Some(Node::Element(e)) => Some(e),
            _ => None,
        }
    }

    /// The character data of this element with entity references resolved and CDATA
    /// unwrapped; child elements are skipped. Entity references were checked by
    /// [`Document::parse`]; one that still fails to resolve is kept as written.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for node in &self.children {
            match node {
                Node::Text(raw) => match unescape(raw) {
                    Ok(t) => out.push_str(&t),
                    Err(_) => out.push_str(raw),
                },
                Node::CData(raw) => out.push_str(
                    raw.strip_prefix("<![CDATA[")
                        .and_then(|r| r.strip_suffix("]]>"))
                        .unwrap_or(raw),
                ),
                Node::Element(_) | Node::Other(_) => {}
            }
        }
        out
    }

    /// The trimmed text of the first child element named `name`.
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.child(name).map(|e| e.text().trim().to_owned())
    }

    /// Replaces the content of this element by `text` (escaped).
    pub fn set_text(&mut self, text: &str) {
        self.open_up();
        self.children.clear();
        if !text.is_empty() {
            self.children.push(Node::Text(escape(text).into_owned()));
        }
    }

    /// Inserts `element` as a child at `index` of [`children`](Element::children) (clamped
    /// to the end), on its own line, indented one level deeper than this element, whose own
    /// indentation is `indent`; `unit` is one level. Nested children of `element` are
    /// indented too.
    pub fn insert(&mut self, index: usize, mut element: Element, indent: &str, unit: &str) {
        let inner = self.child_indent(indent, unit);
        element.indent_new(&inner, unit);
        self.open_up();
        let index = index.min(self.children.len());
        let has_elements = self.elements().next().is_some();
        if !has_elements && self.children.iter().all(Node::is_whitespace) {
            self.children = vec![
                Node::Text(format!("\n{inner}")),
                Node::Element(element),
                Node::Text(format!("\n{indent}")),
            ];
            return;
        }
        // Keep the line break + indentation that precedes `index` where it is, and give the
        // new element one of its own: `<prev/>` `\n  <new/>` `\n  <next/>`.
        let at = if index > 0 && self.children[index - 1].is_whitespace() {
            index - 1
        } else {
            index
        };
        self.children.insert(at, Node::Element(element));
        self.children.insert(at, Node::Text(format!("\n{inner}")));
    }

    /// Appends `element` as the last child (see [`Element::insert`]).
    pub fn append(&mut self, element: Element, indent: &str, unit: &str) {
        self.insert(self.children.len(), element, indent, unit);
    }

    /// Replaces the child at `index` by `element`, indented like the child it replaces.
    pub fn replace(&mut self, index: usize, mut element: Element, indent: &str, unit: &str) {
        let inner = self.child_indent(indent, unit);
        element.indent_new(&inner, unit);
        if let Some(slot) = self.children.get_mut(index) {
            *slot = Node::Element(element);
        }
    }

    /// Removes the child at `index` together with the line break and indentation before it.
    pub fn remove(&mut self, index: usize) {
        if index >= self.children.len() {
            return;
        }
        self.children.remove(index);
        if index > 0 && self.children[index - 1].is_whitespace() {
            self.children.remove(index - 1);
        }
    }

    /// The indentation of this element's children: as written before its first indented
    /// child element, else `indent` + `unit`.
    fn child_indent(&self, indent: &str, unit: &str) -> String {
        self.child_indent_as_written()
            .unwrap_or_else(|| format!("{indent}{unit}"))
    }

    fn child_indent_as_written(&self) -> Option<String> {
        self.children.windows(2).find_map(|pair| match pair {
            [Node::Text(ws), Node::Element(_)] if ws.trim().is_empty() && ws.contains('\n') => {
                ws.rsplit('\n').next().map(str::to_owned)
            }
            _ => None,
        })
    }

    /// Lays out a new element built with [`Element::with_children`]: each child element on
    /// its own line, one `unit` deeper than `indent`, recursively.
    fn indent_new(&mut self, indent: &str, unit: &str) {
        if self.elements().next().is_none() {
            return;
        }
        let inner = format!("{indent}{unit}");
        let mut laid_out = Vec::with_capacity(self.children.len() * 2 + 1);
        for node in std::mem::take(&mut self.children) {
            match node {
                Node::Element(mut e) => {
                    e.indent_new(&inner, unit);
                    laid_out.push(Node::Text(format!("\n{inner}")));
                    laid_out.push(Node::Element(e));
                }
                other => laid_out.push(other),
            }
        }
        laid_out.push(Node::Text(format!("\n{indent}")));
        self.children = laid_out;
    }

    /// Turns a self-closing `<name .../>` into `<name ...></name>` so it can hold children.
    fn open_up(&mut self) {
        if self.close.is_none() {
            let attrs = self
                .open
                .strip_suffix("/>")
                .unwrap_or(&self.open)
                .trim_end();
            self.open = format!("{attrs}>");
            self.close = Some(format!("</{}>", self.name));
        }
    }

    fn write(&self, out: &mut String) {
        out.push_str(&self.open);
        if let Some(close) = &self.close {
            for child in &self.children {
                child.write(out);
            }
            out.push_str(close);
        }
    }
}

/// Adds `node` to `siblings`, joining character data split by entity references into one
/// text node.
fn push_merging_text(siblings: &mut Vec<Node>, node: Node) {
    if let (Some(Node::Text(previous)), Node::Text(more)) = (siblings.last_mut(), &node) {
        previous.push_str(more);
        return;
    }
    siblings.push(node);
}

/// Checks every attribute of a start tag: well-formed, not repeated, values with known
/// entity references only.
fn check_attributes(tag: &quick_xml::events::BytesStart<'_>) -> Result<(), String> {
    for attribute in tag.attributes() {
        let attribute = attribute.map_err(|e| format!("bad attribute: {e}"))?;
        attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| format!("bad attribute value: {e}"))?;
    }
    Ok(())
}

fn position(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

/// A [`Malformed`] at byte `offset` of `text` (clamped to the text).
fn malformed(text: &str, offset: usize, message: String) -> Malformed {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Malformed {
        line,
        column,
        message,
    }
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}
