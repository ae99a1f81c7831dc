//! Parameter value types (integer, number, boolean, uuid, date, email, string) and JSON body schemas merged over many requests, with bounded depth.
