use crate::GeneratedFile;
use currents_schema::Glossary;
pub fn generate(_glossary: &Glossary) -> Vec<GeneratedFile> {
    Vec::new()
}
