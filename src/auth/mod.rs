//! Who may read and who may write: accounts, HTTP Basic, capability links.
