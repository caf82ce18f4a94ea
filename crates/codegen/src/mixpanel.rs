use currents_schema::Glossary;
use proc_macro2::TokenStream;
pub fn generate(_glossary: &Glossary) -> TokenStream {
    quote::quote!()
}
