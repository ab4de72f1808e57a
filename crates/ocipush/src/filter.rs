//! `--include`/`--exclude`, `--min-size`/`--max-size`: which images of the sources a command
//! takes, by glob on their names and by their size.
//! A name is matched in full and by its last path part, each with and without its tag, so
//! `myapp*` finds docker's `myapp:dev` and podman's `localhost/myapp:dev` alike.

use globset::{Glob, GlobSet, GlobSetBuilder};
use ocipush_source::{ImageName, LocalImage};

use crate::cli::FilterArgs;
use crate::failure::CliError;

/// Compiled include and exclude globs.
#[derive(Debug)]
pub struct ImageFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    min_size: Option<u64>,
    max_size: Option<u64>,
}

impl ImageFilter {
    pub fn new(args: &FilterArgs) -> Result<ImageFilter, CliError> {
        Ok(ImageFilter {
            include: compile(&args.include, "--include")?,
            exclude: compile(&args.exclude, "--exclude")?,
            min_size: args.min_size,
            max_size: args.max_size,
        })
    }

    /// Is any filter set?
    pub fn is_active(&self) -> bool {
        self.include.is_some()
            || self.exclude.is_some()
            || self.min_size.is_some()
            || self.max_size.is_some()
    }

    /// Does the image pass? An image without names matches no glob: it is kept only when
    /// there is no --include.
    pub fn accepts(&self, image: &LocalImage) -> bool {
        let size = image.size();
        if self.min_size.is_some_and(|min| size < min)
            || self.max_size.is_some_and(|max| size > max)
        {
            return false;
        }
        let forms: Vec<String> = image.names.iter().flat_map(forms_of).collect();
        let any = |set: &GlobSet| forms.iter().any(|f| set.is_match(f));
        if self.exclude.as_ref().is_some_and(any) {
            return false;
        }
        self.include.as_ref().is_none_or(any)
    }
}

fn compile(globs: &[String], flag: &str) -> Result<Option<GlobSet>, CliError> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let compiled = Glob::new(glob).map_err(|e| {
            CliError::usage(
                format!("{flag} `{glob}` is not a valid glob: {e}"),
                Some("globs use * ? [abc] {a,b}, e.g. --include 'team/*:dev'".into()),
            )
        })?;
        builder.add(compiled);
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| CliError::usage(format!("{flag}: {e}"), None))
}

/// `localhost/team/app:dev` -> that, `localhost/team/app`, `app:dev`, `app`.
fn forms_of(name: &ImageName) -> Vec<String> {
    let short = name.short_name().to_string();
    let mut forms = vec![name.repository.clone(), short.clone()];
    if let Some(tag) = &name.tag {
        forms.push(format!("{}:{tag}", name.repository));
        forms.push(format!("{short}:{tag}"));
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocipush_source::ImageContent;

    fn image(names: &[&str]) -> LocalImage {
        LocalImage {
            names: names.iter().filter_map(|n| ImageName::parse(n)).collect(),
            label: "test".into(),
            content: ImageContent::Assembled(ocipush_source::AssembledImage {
                config: Vec::new(),
                config_digest: ocipush_oci::sha256_of(b""),
                layers: Vec::new(),
            }),
            referrers: Vec::new(),
        }
    }

    fn filter(include: &[&str], exclude: &[&str]) -> ImageFilter {
        ImageFilter::new(&FilterArgs {
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            ..FilterArgs::default()
        })
        .unwrap()
    }

    #[test]
    fn matches_full_and_short_names_with_and_without_tags() {
        let f = filter(&["myapp*"], &[]);
        assert!(f.accepts(&image(&["myapp:dev"])));
        assert!(f.accepts(&image(&["localhost/myapp:dev"])));
        assert!(!f.accepts(&image(&["other:dev"])));
        assert!(!f.accepts(&image(&[])));
        let f = filter(&["team/*:dev"], &[]);
        assert!(f.accepts(&image(&["team/api:dev"])));
        assert!(!f.accepts(&image(&["team/api:1.0"])));
    }

    #[test]
    fn exclude_wins_and_no_filter_takes_all() {
        let f = filter(&["*"], &["*:old"]);
        assert!(f.accepts(&image(&["app:new"])));
        assert!(!f.accepts(&image(&["app:old"])));
        let none = filter(&[], &[]);
        assert!(!none.is_active());
        assert!(none.accepts(&image(&[])));
        assert!(ImageFilter::new(&FilterArgs {
            include: vec!["[".into()],
            ..FilterArgs::default()
        })
        .is_err());
    }

    #[test]
    fn sizes_bound_images() {
        let small = image(&["a:1"]);
        let f = ImageFilter::new(&FilterArgs {
            min_size: Some(1),
            ..FilterArgs::default()
        })
        .unwrap();
        assert!(!f.accepts(&small), "an empty image is 0 bytes");
        let f = ImageFilter::new(&FilterArgs {
            max_size: Some(0),
            ..FilterArgs::default()
        })
        .unwrap();
        assert!(f.accepts(&small));
    }
}
