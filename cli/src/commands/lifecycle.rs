//! Helping people through the life of an enrollment: `temp-code` for a lost device and
//! `delivery` for codes by another channel. Both are for administrators; the daemon decides.

use serde_json::json;
use zeroize::Zeroize;

use super::{print_json, valid_user};
use crate::cli::{DeliveryArgs, OnOff, TempCodeArgs};
use crate::client::Daemon;
use crate::error::CliError;
use crate::format::{duration, time};
use crate::io::Io;

pub fn temp_code(
    args: &TempCodeArgs,
    daemon: &dyn Daemon,
    io: &mut Io<'_>,
) -> Result<(), CliError> {
    let user = &args.user;
    valid_user(user)?;
    let mut issued = daemon.issue_temporary_code(user, args.expires)?;
    let shown = if args.json {
        print_json(
            io,
            &json!({
                "user": user,
                "code": issued.code,
                "expires_at": issued.expires_at,
                "expires_in_seconds": args.expires,
            }),
        )
    } else {
        show(io, user, &issued.code, issued.expires_at, args.expires)
    };
    issued.code.zeroize();
    shown
}

fn show(
    io: &mut Io<'_>,
    user: &str,
    code: &str,
    expires_at: u64,
    lifetime: u64,
) -> Result<(), CliError> {
    say!(io, "Temporary code for {user}: {code}")?;
    say!(io)?;
    tell!(
        io,
        "It works once, until {} (in {}), and is not shown again.",
        time(expires_at),
        duration(lifetime)
    )?;
    tell!(
        io,
        "Give it to {user} over a channel you trust. To set up a new device, {user} runs \
         `twofactor enroll --replace` and gives it as the current code (the lost device then \
         stops working)."
    )?;
    tell!(
        io,
        "Used at a login instead, it also lets {user} run `twofactor enroll --replace` without \
         a code in the next 10 minutes."
    )
}

pub fn delivery(args: &DeliveryArgs, daemon: &dyn Daemon, io: &mut Io<'_>) -> Result<(), CliError> {
    let user = &args.user;
    valid_user(user)?;
    let enabled = args.state == OnOff::On;
    daemon.set_delivery(user, enabled)?;
    if args.json {
        return print_json(io, &json!({ "user": user, "delivery_enabled": enabled }));
    }
    if enabled {
        tell!(
            io,
            "Codes by another channel are on for {user}: at a login, {user} may ask for a \
             single-use code sent by the [delivery] command."
        )?;
        tell!(
            io,
            "Such codes are weaker than the authenticator app (they can be phished or \
             intercepted); turn it off again with `twofactor delivery {user} off`."
        )
    } else {
        tell!(
            io,
            "Codes by another channel are off for {user}; a code already sent no longer works."
        )
    }
}
