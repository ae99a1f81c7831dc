//! Route templates learned from observed paths per host (`/users/{userId}`), with a bounded number of routes per host.
