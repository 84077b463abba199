//! `state`: the OCI state JSON on stdout, status derived now.

use super::Ctx;
use crate::error::Result;

pub fn run(ctx: &Ctx, id: &str) -> Result<i32> {
    let st = ctx.load(id)?;
    let v = st.oci(st.status().as_str());
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(0)
}
