//! Loading `schemas/`: parse every file, resolve includes and overrides,
//! validate, and report every problem at once with its file and line.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use currents_core::naming;

use crate::format::{
    EventDef, EventsFile, FieldDef, FieldEntry, FieldsFile, GlobalFile, Located, MixpanelRule,
    SimpleRule,
};
use crate::model::{
    self, DISTINCT_ID, EventType, Field, FieldType, Glossary, Group, INSERT_ID, Location, Mapping,
    NamePart, RESERVED_PROPERTIES, TIME,
};

/// One problem in the schema files.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub location: Location,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Loading failed; holds every problem found, sorted by file and line.
#[derive(Debug, Clone, thiserror::Error)]
pub struct LoadError {
    pub root: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} problem(s) in the schema at {}:",
            self.problems.len(),
            self.root.display()
        )?;
        for problem in &self.problems {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}

const GLOBAL_FILE: &str = "currents.toml";
const FIELDS_FILE: &str = "fields.toml";
const EVENTS_DIR: &str = "events";

/// The schema's files, read into memory, so loading can be tested without a disk.
#[derive(Debug, Clone, Default)]
pub struct SourceFiles {
    /// (path relative to the schema root, contents), events files in any order.
    pub files: Vec<(PathBuf, String)>,
}

impl SourceFiles {
    /// Reads `currents.toml`, `fields.toml` and every `events/**/*.toml` under `root`.
    pub fn read(root: &Path) -> Result<Self, LoadError> {
        let mut files = Vec::new();
        let mut problems = Vec::new();
        let mut paths = vec![PathBuf::from(GLOBAL_FILE), PathBuf::from(FIELDS_FILE)];
        let mut event_paths = Vec::new();
        collect_toml(
            &root.join(EVENTS_DIR),
            root,
            &mut event_paths,
            &mut problems,
        );
        event_paths.sort();
        paths.extend(event_paths);
        for rel in paths {
            match std::fs::read_to_string(root.join(&rel)) {
                Ok(text) => files.push((rel, text)),
                Err(err) => problems.push(Problem {
                    location: Location { file: rel, line: 0 },
                    message: format!("cannot read: {err}"),
                }),
            }
        }
        if problems.is_empty() {
            Ok(SourceFiles { files })
        } else {
            Err(LoadError {
                root: root.to_owned(),
                problems,
            })
        }
    }
}

fn collect_toml(dir: &Path, root: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            problems.push(Problem {
                location: Location {
                    file: dir.strip_prefix(root).unwrap_or(dir).to_owned(),
                    line: 0,
                },
                message: format!("cannot read directory: {err}"),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_toml(&path, root, out, problems);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_owned());
        }
    }
}

/// Loads and validates the schema directory (normally `schemas/`).
pub fn load(root: &Path) -> Result<Glossary, LoadError> {
    let sources = SourceFiles::read(root)?;
    load_sources(&sources).map_err(|problems| LoadError {
        root: root.to_owned(),
        problems,
    })
}

/// Loads from in-memory files; returns every problem found.
pub fn load_sources(sources: &SourceFiles) -> Result<Glossary, Vec<Problem>> {
    let mut cx = Context::default();
    let mut global = None;
    let mut fields_file = None;
    let mut event_files = Vec::new();
    for (path, text) in &sources.files {
        let file = cx.add_file(path, text);
        if path == Path::new(GLOBAL_FILE) {
            global = cx.parse::<GlobalFile>(file, text);
        } else if path == Path::new(FIELDS_FILE) {
            fields_file = cx.parse::<FieldsFile>(file, text);
        } else if let Some(parsed) = cx.parse::<EventsFile>(file, text) {
            event_files.push((file, parsed));
        }
    }
    if global.is_none() && !cx.has_file(GLOBAL_FILE) {
        cx.problem_at(PathBuf::from(GLOBAL_FILE), 0, "file is missing".into());
    }
    if fields_file.is_none() && !cx.has_file(FIELDS_FILE) {
        cx.problem_at(PathBuf::from(FIELDS_FILE), 0, "file is missing".into());
    }
    let (Some(global), Some(fields_file)) = (global, fields_file) else {
        return Err(cx.finish_err());
    };

    let fields_id = cx.file_id(FIELDS_FILE);
    let library = cx.library(fields_id, &fields_file);
    let groups = cx.groups(fields_id, &fields_file, &library);
    let segments: BTreeMap<String, String> = global.naming.segments.clone().into_iter().collect();

    let mut events: Vec<EventType> = Vec::new();
    let mut seen_types: HashMap<String, Location> = HashMap::new();
    let mut seen_rust: HashMap<String, Location> = HashMap::new();
    for (file, parsed) in &event_files {
        for def in &parsed.event {
            let location = cx.location(*file, &def.span);
            let event = cx.event(*file, def, &library, &groups, &segments);
            if let Some(first) = seen_types.insert(def.value.event_type.clone(), location.clone()) {
                cx.problem(
                    location.clone(),
                    format!(
                        "duplicate event type `{}` (first defined at {first})",
                        def.value.event_type
                    ),
                );
            }
            if let Some(first) = seen_rust.insert(def.value.rust_name.clone(), location.clone()) {
                cx.problem(
                    location,
                    format!(
                        "duplicate rust_name `{}` (first used at {first})",
                        def.value.rust_name
                    ),
                );
            }
            events.extend(event);
        }
    }
    if !cx.problems.is_empty() {
        return Err(cx.finish_err());
    }
    events.sort_by(|a, b| a.event_type.cmp(&b.event_type));
    let mut library: Vec<Field> = library.into_values().collect();
    library.sort_by(|a, b| a.name.cmp(&b.name));
    let mut groups: Vec<Group> = groups.into_values().collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Glossary {
        http_user_fields: global.http.user_fields,
        partner_id: global.mixpanel.partner_id,
        segments,
        groups,
        library,
        events,
    })
}

#[derive(Default)]
struct Context {
    files: Vec<(PathBuf, Vec<usize>)>,
    problems: Vec<Problem>,
}

type FileId = usize;

impl Context {
    fn add_file(&mut self, path: &Path, text: &str) -> FileId {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        self.files.push((path.to_owned(), line_starts));
        self.files.len() - 1
    }

    fn has_file(&self, name: &str) -> bool {
        self.files.iter().any(|(p, _)| p == Path::new(name))
    }

    fn file_id(&self, name: &str) -> FileId {
        self.files
            .iter()
            .position(|(p, _)| p == Path::new(name))
            .unwrap_or_default()
    }

    fn location(&self, file: FileId, span: &Range<usize>) -> Location {
        let (path, starts) = &self.files[file];
        let line = starts.partition_point(|&start| start <= span.start);
        Location {
            file: path.clone(),
            line,
        }
    }

    fn problem(&mut self, location: Location, message: String) {
        self.problems.push(Problem { location, message });
    }

    fn problem_at(&mut self, file: PathBuf, line: usize, message: String) {
        self.problem(Location { file, line }, message);
    }

    fn finish_err(mut self) -> Vec<Problem> {
        self.problems.sort();
        self.problems.dedup();
        self.problems
    }

    fn parse<T: serde::de::DeserializeOwned>(&mut self, file: FileId, text: &str) -> Option<T> {
        match toml::from_str::<T>(text) {
            Ok(value) => Some(value),
            Err(err) => {
                let span = err.span().unwrap_or(0..0);
                let location = self.location(file, &span);
                self.problem(location, err.message().trim().to_owned());
                None
            }
        }
    }

    fn library(&mut self, file: FileId, fields: &FieldsFile) -> BTreeMap<String, Field> {
        let mut library = BTreeMap::new();
        for (name, def) in &fields.field {
            let location = self.location(file, &def.span);
            self.check_field_name(name, &location);
            let field = field_from_def(name, &def.value, location.clone());
            self.check_field(&field);
            library.insert(name.clone(), field);
        }
        library
    }

    fn groups(
        &mut self,
        file: FileId,
        fields: &FieldsFile,
        library: &BTreeMap<String, Field>,
    ) -> BTreeMap<String, Group> {
        let mut groups = BTreeMap::new();
        for (name, def) in &fields.group {
            let location = self.location(file, &def.span);
            let mut seen = BTreeSet::new();
            for member in &def.value.fields {
                if !library.contains_key(member) {
                    self.problem(
                        location.clone(),
                        format!("group `{name}` lists `{member}`, which is not a [field.{member}] in fields.toml"),
                    );
                }
                if !seen.insert(member) {
                    self.problem(
                        location.clone(),
                        format!("group `{name}` lists `{member}` twice"),
                    );
                }
            }
            groups.insert(
                name.clone(),
                Group {
                    name: name.clone(),
                    doc: def.value.doc.clone(),
                    fields: def.value.fields.clone(),
                },
            );
        }
        groups
    }

    fn check_field_name(&mut self, name: &str, location: &Location) {
        if !naming::is_field_name(name) {
            self.problem(
                location.clone(),
                format!("field name `{name}` is not a valid Rust identifier in snake_case"),
            );
        }
    }

    /// Checks that hold for a field wherever it is defined.
    fn check_field(&mut self, field: &Field) {
        let location = field.location.clone();
        if field.doc.trim().is_empty() {
            self.problem(
                location.clone(),
                format!("field `{}` has an empty doc", field.name),
            );
        }
        match &field.mixpanel {
            Mapping::Expand(_) if !(field.json && field.ty == FieldType::String) => self.problem(
                location.clone(),
                format!(
                    "field `{}`: `expand` needs a JSON text field (type = \"string\", json = true)",
                    field.name
                ),
            ),
            Mapping::Rename(to) if to.trim().is_empty() => self.problem(
                location.clone(),
                format!(
                    "field `{}` is renamed to an empty property name",
                    field.name
                ),
            ),
            _ => {}
        }
        if field.full_name.is_some() && field.mixpanel != Mapping::Drop {
            self.problem(
                location.clone(),
                format!(
                    "field `{}`: `full_name` only applies to fields the Braze profile drops",
                    field.name
                ),
            );
        }
        for property in [field.braze_property(), field.full_property()]
            .into_iter()
            .flatten()
        {
            if RESERVED_PROPERTIES.contains(&property) {
                self.problem(
                    location.clone(),
                    format!(
                        "field `{}` maps onto `{property}`, which the mapper sets itself",
                        field.name
                    ),
                );
            }
        }
    }

    fn event(
        &mut self,
        file: FileId,
        def: &Located<EventDef>,
        library: &BTreeMap<String, Field>,
        groups: &BTreeMap<String, Group>,
        segments: &BTreeMap<String, String>,
    ) -> Option<EventType> {
        let location = self.location(file, &def.span);
        let d = &def.value;
        let before = self.problems.len();
        let what = format!("event `{}`", d.event_type);

        if !naming::is_event_type(&d.event_type) {
            self.problem(
                location.clone(),
                format!("{what}: event type must look like `users.messages.email.Open` (dotted lowercase segments, then an UpperCamel record name)"),
            );
        }
        if !naming::is_type_name(&d.rust_name) {
            self.problem(
                location.clone(),
                format!(
                    "{what}: rust_name `{}` is not a free UpperCamelCase Rust identifier",
                    d.rust_name
                ),
            );
        }
        match (d.category, &d.channel) {
            (model::Category::Message, None) => self.problem(
                location.clone(),
                format!("{what}: message events need a `channel`"),
            ),
            (category, Some(_)) if category != model::Category::Message => self.problem(
                location.clone(),
                format!("{what}: only message events have a `channel`"),
            ),
            _ => {}
        }
        if d.doc.trim().is_empty() {
            self.problem(location.clone(), format!("{what}: empty doc"));
        }

        // Resolve the field list.
        let mut fields: Vec<Field> = Vec::new();
        let mut included = BTreeSet::new();
        for group in &d.include {
            let at = self.location(file, &group.span);
            match groups.get(&group.value) {
                None => self.problem(at, format!("{what}: unknown field group `{}`", group.value)),
                Some(g) => {
                    included.insert(g.name.clone());
                    for member in &g.fields {
                        if d.exclude.iter().any(|x| &x.value == member) {
                            continue;
                        }
                        self.push_library_field(&mut fields, member, library, at.clone(), &what);
                    }
                }
            }
        }
        for excluded in &d.exclude {
            let in_group = included
                .iter()
                .any(|g| groups[g].fields.contains(&excluded.value));
            if !in_group {
                let at = self.location(file, &excluded.span);
                self.problem(
                    at,
                    format!(
                        "{what}: excludes `{}`, which no included group has",
                        excluded.value
                    ),
                );
            }
        }
        for reference in &d.fields {
            let at = self.location(file, &reference.span);
            if !library.contains_key(&reference.value) {
                self.problem(
                    at,
                    format!(
                        "{what}: unknown field `{}`; add [field.{}] to fields.toml or define it in an [[event.field]] with type and doc",
                        reference.value, reference.value
                    ),
                );
                continue;
            }
            self.push_library_field(&mut fields, &reference.value, library, at, &what);
        }
        let mut overridden = BTreeSet::new();
        for entry in &d.field {
            let at = self.location(file, &entry.span);
            let e = &entry.value;
            self.check_field_name(&e.name, &at);
            if !overridden.insert(e.name.clone()) {
                self.problem(
                    at.clone(),
                    format!("{what}: field `{}` has two [[event.field]] entries", e.name),
                );
                continue;
            }
            if let Some(existing) = fields.iter_mut().find(|f| f.name == e.name) {
                apply_overrides(existing, e, at);
            } else if let Some(lib) = library.get(&e.name) {
                let mut field = lib.clone();
                apply_overrides(&mut field, e, at);
                fields.push(field);
            } else {
                match (&e.ty, &e.doc) {
                    (Some(ty), Some(doc)) => {
                        let def = FieldDef {
                            ty: *ty,
                            nullable: e.nullable.unwrap_or(false),
                            pii: e.pii.unwrap_or(false),
                            json: e.json.unwrap_or(false),
                            doc: doc.clone(),
                            mixpanel: e.mixpanel.clone(),
                            full_name: e.full_name.clone(),
                            http_name: e.http_name.clone(),
                            avro: e.avro,
                            note: e.note.clone(),
                        };
                        fields.push(field_from_def(&e.name, &def, at));
                    }
                    _ => self.problem(
                        at,
                        format!(
                            "{what}: field `{}` is not in fields.toml, so its [[event.field]] needs `type` and `doc`",
                            e.name
                        ),
                    ),
                }
            }
        }
        for field in &fields {
            if field.location.file != self.files[file].0 {
                continue; // library fields were checked once, in fields.toml
            }
            self.check_field(field);
        }
        if !d.avro {
            for field in &mut fields {
                field.avro = false;
            }
        }

        self.check_event_fields(&what, &location, &fields);
        self.check_mixpanel_name(&what, &location, d, &fields, segments);

        if self.problems.len() > before {
            return None;
        }
        Some(EventType {
            event_type: d.event_type.clone(),
            rust_name: d.rust_name.clone(),
            category: d.category,
            channel: d.channel.clone(),
            avro: d.avro,
            doc: d.doc.clone(),
            mixpanel_name: d.mixpanel.name.clone(),
            name_by_convention: d.mixpanel.by_convention,
            fields,
            location,
        })
    }

    fn push_library_field(
        &mut self,
        fields: &mut Vec<Field>,
        name: &str,
        library: &BTreeMap<String, Field>,
        at: Location,
        what: &str,
    ) {
        if fields.iter().any(|f| f.name == name) {
            self.problem(at, format!("{what}: duplicate field `{name}`"));
            return;
        }
        if let Some(field) = library.get(name) {
            fields.push(field.clone());
        }
    }

    fn check_event_fields(&mut self, what: &str, location: &Location, fields: &[Field]) {
        for (name, types) in [
            ("id", &[FieldType::String][..]),
            ("time", &[FieldType::Int, FieldType::Long][..]),
        ] {
            match fields.iter().find(|f| f.name == name) {
                Some(f) if types.contains(&f.ty) && !f.nullable => {}
                Some(f) => self.problem(
                    f.location.clone(),
                    format!(
                        "{what}: `{name}` must be a required {}",
                        types
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    ),
                ),
                None => self.problem(
                    location.clone(),
                    format!("{what}: every event needs an `{name}` field"),
                ),
            }
        }
        // Special Mixpanel properties have exactly one meaning each.
        let by_target = |target: &str| {
            fields
                .iter()
                .filter(|f| f.braze_property() == Some(target))
                .collect::<Vec<_>>()
        };
        match by_target(INSERT_ID).as_slice() {
            [f] if f.name == "id" => {}
            _ => self.problem(
                location.clone(),
                format!("{what}: `id` (and only `id`) must map to `{INSERT_ID}`"),
            ),
        }
        match by_target(TIME).as_slice() {
            [f] if f.name == "time" => {}
            _ => self.problem(
                location.clone(),
                format!("{what}: `time` (and only `time`) must map to `{TIME}`"),
            ),
        }
        let distinct = by_target(DISTINCT_ID);
        if distinct.len() > 1 || distinct.iter().any(|f| f.ty != FieldType::String) {
            self.problem(
                location.clone(),
                format!("{what}: at most one string field may map to `{DISTINCT_ID}`"),
            );
        }
        // Property names must be unique in each profile, and HTTP names unique.
        for (profile, property) in [
            ("braze", Field::braze_property as fn(&Field) -> Option<&str>),
            ("full", Field::full_property as fn(&Field) -> Option<&str>),
        ] {
            let mut seen: HashMap<&str, &str> = HashMap::new();
            for field in fields {
                if let Some(p) = property(field)
                    && let Some(other) = seen.insert(p, &field.name)
                {
                    self.problem(
                        field.location.clone(),
                        format!("{what}: fields `{other}` and `{}` both map to Mixpanel property `{p}` in the {profile} profile", field.name),
                    );
                }
            }
        }
        let mut http: HashMap<&str, &str> = HashMap::new();
        for field in fields {
            if let Some(other) = http.insert(field.http_key(), &field.name) {
                self.problem(
                    field.location.clone(),
                    format!(
                        "{what}: fields `{other}` and `{}` share the HTTP key `{}`",
                        field.name,
                        field.http_key()
                    ),
                );
            }
        }
    }

    fn check_mixpanel_name(
        &mut self,
        what: &str,
        location: &Location,
        d: &EventDef,
        fields: &[Field],
        segments: &BTreeMap<String, String>,
    ) {
        let name = &d.mixpanel.name;
        if name.trim().is_empty() {
            self.problem(
                location.clone(),
                format!("{what}: no Mixpanel event name (mixpanel.name)"),
            );
            return;
        }
        for part in model::parse_name_template(name) {
            if let NamePart::Field(field) = part {
                match fields.iter().find(|f| f.name == field) {
                    Some(f) if f.ty == FieldType::String && !f.nullable => {}
                    _ => self.problem(
                        location.clone(),
                        format!("{what}: Mixpanel name uses `{{{field}}}`, which is not a required string field"),
                    ),
                }
            }
        }
        if d.mixpanel.by_convention {
            for segment in d.event_type.split('.').rev().skip(1) {
                if !segments.contains_key(segment) {
                    self.problem(
                        location.clone(),
                        format!("{what}: segment `{segment}` has no display name in currents.toml [naming.segments]"),
                    );
                }
            }
            let expected =
                model::convention_name(&d.event_type, |s| segments.get(s).map(String::as_str));
            if &expected != name {
                self.problem(
                    location.clone(),
                    format!(
                        "{what}: by_convention name should be \"{expected}\", found \"{name}\""
                    ),
                );
            }
        }
    }
}

fn field_from_def(name: &str, def: &FieldDef, location: Location) -> Field {
    Field {
        name: name.to_owned(),
        ty: def.ty,
        nullable: def.nullable,
        pii: def.pii,
        json: def.json,
        doc: def.doc.clone(),
        mixpanel: def.mixpanel.as_ref().map(mapping).unwrap_or(Mapping::Keep),
        full_name: def.full_name.clone(),
        http_name: def.http_name.clone(),
        avro: def.avro.unwrap_or(true),
        note: def.note.clone(),
        location,
    }
}

fn apply_overrides(field: &mut Field, e: &FieldEntry, at: Location) {
    if let Some(ty) = e.ty {
        field.ty = ty;
    }
    if let Some(v) = e.nullable {
        field.nullable = v;
    }
    if let Some(v) = e.pii {
        field.pii = v;
    }
    if let Some(v) = e.json {
        field.json = v;
    }
    if let Some(v) = &e.doc {
        field.doc = v.clone();
    }
    if let Some(v) = &e.mixpanel {
        field.mixpanel = mapping(v);
    }
    if let Some(v) = &e.full_name {
        field.full_name = Some(v.clone());
    }
    if let Some(v) = &e.http_name {
        field.http_name = Some(v.clone());
    }
    if let Some(v) = e.avro {
        field.avro = v;
    }
    if let Some(v) = &e.note {
        field.note = Some(v.clone());
    }
    field.location = at;
}

fn mapping(rule: &MixpanelRule) -> Mapping {
    match rule {
        MixpanelRule::Simple(SimpleRule::Keep) => Mapping::Keep,
        MixpanelRule::Simple(SimpleRule::Drop) => Mapping::Drop,
        MixpanelRule::Rename { rename } => Mapping::Rename(rename.clone()),
        MixpanelRule::Expand { expand } => Mapping::Expand(expand.clone()),
    }
}
