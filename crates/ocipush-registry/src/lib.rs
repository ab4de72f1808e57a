//! ocipush-registry
