//! The hook attributes of `sandpipe-connector` (re-exported there; use them
//! as `#[sandpipe_connector::process_event]` and so on).
//!
//! Each attribute keeps the function as written and adds, next to it, a
//! hidden constant of a fixed name holding the function as the SDK's hook
//! type (`__SANDPIPE_HOOK_PROCESS_EVENT: Option<ProcessEvent>`).
//! `sandpipe_connector::export!()`, in the same module, picks those up (a
//! hook not defined falls back to the SDK's `None` through a glob import the
//! defined constant shadows) and exports the guest ABI. A function whose
//! shape cannot be a hook is refused with a `compile_error!` saying what is
//! wrong and what the hook's signature is; a parameter or return type that
//! differs from it is a type error pointing at the signature, and a hook in a
//! module without `export!()` fails to find
//! `ADD_sandpipe_connector_export_TO_THIS_MODULE`, the constant `export!()` defines.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType};

/// What the SDK calls a hook, and the signature it must have.
struct Hook {
    /// The attribute's name, and the hidden constant's suffix.
    name: &'static str,
    /// The SDK's function-pointer type for it (`sandpipe_connector::<ty>`).
    ty: &'static str,
    /// Its number of parameters.
    arity: usize,
    /// The signature, for messages.
    signature: &'static str,
}

const SETUP: Hook = Hook {
    name: "setup",
    ty: "Setup",
    arity: 1,
    signature: "fn(meta: &Meta) -> Result<(), Error>",
};
const PROCESS_EVENT: Hook = Hook {
    name: "process_event",
    ty: "ProcessEvent",
    arity: 2,
    signature: "fn(event: Event, meta: &Meta) -> Result<Option<Event>, Error>",
};
const COMPOSE_WEBHOOK: Hook = Hook {
    name: "compose_webhook",
    ty: "ComposeWebhook",
    arity: 2,
    signature: "fn(event: Event, meta: &Meta) -> Result<Option<Webhook>, Error>",
};
const ON_EVENT: Hook = Hook {
    name: "on_event",
    ty: "OnEvent",
    arity: 2,
    signature: "fn(event: Event, meta: &Meta) -> Result<(), Error>",
};

/// `setup(meta)`: runs once per instance, before any other hook.
#[proc_macro_attribute]
pub fn setup(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(&SETUP, args, item)
}

/// `process_event(event, meta)`: the event to pass on, `None` to drop it.
#[proc_macro_attribute]
pub fn process_event(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(&PROCESS_EVENT, args, item)
}

/// `compose_webhook(event, meta)`: the request to send for the event, or `None`.
#[proc_macro_attribute]
pub fn compose_webhook(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(&COMPOSE_WEBHOOK, args, item)
}

/// `on_event(event, meta)`: runs on each event the chain kept, after it.
#[proc_macro_attribute]
pub fn on_event(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(&ON_EVENT, args, item)
}

fn expand(hook: &Hook, args: TokenStream, item: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    let item = proc_macro2::TokenStream::from(item);
    let refusal = |span: Span, what: String| {
        let message = format!(
            "#[sandpipe_connector::{}] {what}; a {} hook is `{}`",
            hook.name, hook.name, hook.signature
        );
        let error = syn::Error::new(span, message).to_compile_error();
        quote! { #error #item }.into()
    };
    if !args.is_empty() {
        return refusal(args.span(), "takes no arguments".into());
    }
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => return refusal(item.span(), "goes on a function".into()),
    };
    let sig = &function.sig;
    if let Some(receiver) = sig.receiver() {
        return refusal(
            receiver.span(),
            "goes on a free function, not a method".into(),
        );
    }
    if let Some(asyncness) = &sig.asyncness {
        return refusal(asyncness.span(), "cannot be async".into());
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return refusal(sig.generics.span(), "cannot be generic".into());
    }
    if sig.abi.is_some() || sig.variadic.is_some() || sig.constness.is_some() {
        return refusal(sig.span(), "must be a plain Rust `fn`".into());
    }
    if sig.inputs.len() != hook.arity {
        let count = sig.inputs.len();
        let wanted = match hook.arity {
            1 => "one parameter".to_string(),
            n => format!("{n} parameters"),
        };
        return refusal(sig.inputs.span(), format!("takes {wanted}, not {count}"));
    }
    if let Some(pattern) = sig.inputs.iter().find(|i| !matches!(i, FnArg::Typed(_))) {
        return refusal(pattern.span(), "takes typed parameters".into());
    }
    if matches!(sig.output, ReturnType::Default) {
        return refusal(sig.span(), "must return a Result".into());
    }
    let name = &sig.ident;
    let ty = format_ident!("{}", hook.ty);
    let constant = format_ident!("__SANDPIPE_HOOK_{}", hook.name.to_uppercase());
    // Spanned at the signature, so a type mismatch points at it.
    let registration = quote_spanned! {sig.span()=>
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        const #constant: ::core::option::Option<::sandpipe_connector::#ty> =
            ::core::option::Option::Some(#name);
        // `export!()` must be in this module too, or the hook would be missed.
        const _: () = ADD_sandpipe_connector_export_TO_THIS_MODULE;
    };
    quote! { #function #registration }.into()
}
