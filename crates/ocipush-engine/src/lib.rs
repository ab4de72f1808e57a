//! ocipush-engine
