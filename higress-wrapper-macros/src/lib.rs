//! The `set_ctx!` registration macro of `higress-wrapper`. Use it through
//! `higress_wrapper::set_ctx!`; the documentation lives there.
//!
//! The macro only forwards: it parses `key: value` pairs, and generates an
//! `impl higress_wrapper::HttpPlugin` whose `HOOKS` name your functions as
//! typed function pointers spanned on your function names, so a wrong
//! signature is reported at your code with the expected type.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{bracketed, parenthesized, token, Expr, Ident, LitStr, Path, Token, Type, Visibility};

/// The keys `set_ctx!` accepts, in the order the docs list them.
const KEYS: &[&str] = &[
    "name",
    "config",
    "state",
    "plugin",
    "parse_config",
    "parse_rule_config",
    "on_plugin_start",
    "on_tick",
    "on_queue_ready",
    "capture_request_line",
    "skip_binary_bodies",
    "on_request_headers",
    "on_request_body",
    "on_streaming_request_body",
    "on_response_headers",
    "on_response_body",
    "on_streaming_response_body",
    "on_stream_done",
];

/// How an `on_tick` entry is written, repeated in the errors about it.
const TICK_SHAPE: &str = "`(period, function)`, e.g. `(Duration::from_secs(5), refresh)`";

struct Tick {
    period: Expr,
    func: Path,
}

impl Parse for Tick {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if !input.peek(token::Paren) {
            let found: Expr = input.parse()?;
            return Err(syn::Error::new_spanned(
                found,
                format!("each `on_tick` entry is a pair {TICK_SHAPE}"),
            ));
        }
        let content;
        parenthesized!(content in input);
        let period: Expr = content.parse()?;
        if !content.peek(Token![,]) {
            return Err(content.error(format!(
                "expected `,` then the tick function: an `on_tick` entry is {TICK_SHAPE}"
            )));
        }
        content.parse::<Token![,]>()?;
        let func = fn_path(content.parse()?, || {
            format!(
                "expected the name of the tick function here: an `on_tick` entry is {TICK_SHAPE}"
            )
        })?;
        let _ = content.parse::<Option<Token![,]>>()?;
        if !content.is_empty() {
            return Err(content.error(format!("an `on_tick` entry is {TICK_SHAPE}")));
        }
        Ok(Tick { period, func })
    }
}

/// The generated plugin type: `plugin: Name` or `plugin: pub Name`.
struct PluginType {
    vis: Visibility,
    name: Ident,
}

impl Parse for PluginType {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let vis: Visibility = input.parse()?;
        let name: Ident = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected the name of the plugin type, e.g. `plugin: MyPlugin` or `plugin: pub MyPlugin`",
            )
        })?;
        Ok(PluginType { vis, name })
    }
}

/// The path of a function given as `expr`, or an error spanning `expr`.
fn fn_path(expr: Expr, message: impl FnOnce() -> String) -> syn::Result<Path> {
    match expr {
        Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => Ok(p.path),
        other => Err(syn::Error::new_spanned(other, message())),
    }
}

/// A function given to a key: a path such as `my_hook` or `hooks::my_hook`.
fn parse_fn(input: ParseStream<'_>, key: &Ident) -> syn::Result<Path> {
    fn_path(input.parse()?, || {
        let example = key.to_string();
        let example = example.trim_start_matches("on_");
        format!(
            "`{key}` takes the name of a function (not a closure or a call): \
             `fn my_{example}(...) {{ ... }}` and `{key}: my_{example}`"
        )
    })
}

/// The key closest to a misspelled one, if any is close.
fn closest_key(unknown: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (edit_distance(unknown, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diag = i;
        let mut left = i.saturating_add(1);
        let mut next = Vec::with_capacity(row.len());
        next.push(left);
        for (j, cb) in b.iter().enumerate() {
            let up = row.get(j.saturating_add(1)).copied().unwrap_or(usize::MAX);
            let cost = usize::from(ca != *cb);
            let best = diag
                .saturating_add(cost)
                .min(up.saturating_add(1))
                .min(left.saturating_add(1));
            next.push(best);
            diag = up;
            left = best;
        }
        row = next;
    }
    row.last().copied().unwrap_or(0)
}

#[derive(Default)]
struct Input {
    name: Option<LitStr>,
    config: Option<Type>,
    state: Option<Type>,
    plugin: Option<PluginType>,
    parse_config: Option<Path>,
    parse_rule_config: Option<Path>,
    on_plugin_start: Option<Path>,
    on_tick: Option<Vec<Tick>>,
    on_queue_ready: Option<Path>,
    capture_request_line: Option<syn::LitBool>,
    skip_binary_bodies: Option<syn::LitBool>,
    hooks: Vec<(Ident, Path)>,
}

fn twice(key: &Ident) -> syn::Error {
    syn::Error::new(
        key.span(),
        format!("`{key}` is given twice in set_ctx!; keep one"),
    )
}

/// A `true`/`false` literal, or an error that says so at the value.
fn parse_bool(input: ParseStream<'_>, key: &Ident) -> syn::Result<syn::LitBool> {
    if !input.peek(syn::LitBool) {
        let found: Expr = input.parse()?;
        return Err(syn::Error::new_spanned(
            found,
            format!("`{key}` takes `true` or `false`"),
        ));
    }
    input.parse()
}

fn set_once<T>(slot: &mut Option<T>, key: &Ident, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(twice(key));
    }
    *slot = Some(value);
    Ok(())
}

impl Parse for Input {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut out = Input::default();
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            input.parse::<Token![:]>()?;
            match key.to_string().as_str() {
                "name" => {
                    let v: LitStr = input.parse()?;
                    if v.value().is_empty() {
                        return Err(syn::Error::new(v.span(), "the plugin name must not be empty: it names the plugin in every log line"));
                    }
                    set_once(&mut out.name, &key, v)?;
                }
                "config" => set_once(&mut out.config, &key, input.parse()?)?,
                "state" => set_once(&mut out.state, &key, input.parse()?)?,
                "plugin" => set_once(&mut out.plugin, &key, input.parse()?)?,
                "parse_config" => set_once(&mut out.parse_config, &key, parse_fn(input, &key)?)?,
                "parse_rule_config" => {
                    set_once(&mut out.parse_rule_config, &key, parse_fn(input, &key)?)?;
                }
                "on_plugin_start" => {
                    set_once(&mut out.on_plugin_start, &key, parse_fn(input, &key)?)?;
                }
                "on_queue_ready" => {
                    set_once(&mut out.on_queue_ready, &key, parse_fn(input, &key)?)?;
                }
                "capture_request_line" => {
                    set_once(
                        &mut out.capture_request_line,
                        &key,
                        parse_bool(input, &key)?,
                    )?;
                }
                "skip_binary_bodies" => {
                    set_once(&mut out.skip_binary_bodies, &key, parse_bool(input, &key)?)?;
                }
                "on_tick" => {
                    if !input.peek(token::Bracket) {
                        let found: Expr = input.parse()?;
                        return Err(syn::Error::new_spanned(
                            found,
                            "`on_tick` takes a list of `(period, function)` pairs in brackets, \
                             e.g. `on_tick: [(Duration::from_secs(5), refresh)]`",
                        ));
                    }
                    let content;
                    bracketed!(content in input);
                    let ticks: Punctuated<Tick, Token![,]> =
                        content.parse_terminated(Tick::parse, Token![,])?;
                    set_once(&mut out.on_tick, &key, ticks.into_iter().collect())?;
                }
                k if KEYS.contains(&k) => {
                    if out.hooks.iter().any(|(h, _)| h == &key) {
                        return Err(twice(&key));
                    }
                    let path = parse_fn(input, &key)?;
                    out.hooks.push((key, path));
                }
                k => {
                    let hint = closest_key(k)
                        .map(|c| format!("did you mean `{c}`? "))
                        .unwrap_or_default();
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown key `{key}` in set_ctx!; {hint}The keys are: {}",
                            KEYS.join(", ")
                        ),
                    ));
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(out)
    }
}

/// Registers a plugin, like Go's `wrapper.SetCtx`. See `higress_wrapper::set_ctx`.
#[proc_macro]
pub fn set_ctx(input: TokenStream) -> TokenStream {
    match syn::parse::<Input>(input).and_then(expand) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand(input: Input) -> syn::Result<TokenStream2> {
    let krate = quote!(::higress_wrapper);
    let name = input.name.ok_or_else(|| {
        syn::Error::new(
            Span::call_site(),
            "set_ctx! needs the plugin name, e.g. `name: \"my-plugin\",` \
             (it starts every log line of the plugin)",
        )
    })?;
    let config = input.config.ok_or_else(|| {
        syn::Error::new(
            Span::call_site(),
            "set_ctx! needs the config type, e.g. `config: MyConfig,` with \
             `#[derive(serde::Deserialize)] struct MyConfig { ... }` \
             (a plugin without settings can use an empty struct)",
        )
    })?;
    let state = input.state.map_or_else(|| quote!(()), |t| quote!(#t));
    let (plugin_vis, plugin) = match input.plugin {
        Some(PluginType { vis, name }) => (vis, name),
        None => (
            Visibility::Inherited,
            Ident::new("Plugin", Span::call_site()),
        ),
    };
    let value = quote!(#krate::__private::serde_json::Value);
    let cfg_err = quote!(#krate::ConfigError);

    let parse_config = match &input.parse_config {
        Some(f) => quote_spanned! {f.span()=>
            let __hw_f: fn(&#value) -> ::core::result::Result<#config, #cfg_err> = #f;
            __hw_f(__hw_json)
        },
        None => quote_spanned! {config.span()=>
            #krate::__private::from_json::<#config>(__hw_json)
        },
    };
    let parse_rule_config = input.parse_rule_config.as_ref().map(|f| {
        quote_spanned! {f.span()=>
            fn parse_rule_config(
                __hw_rule: &#krate::RuleInput<'_, #config>,
            ) -> ::core::result::Result<#config, #cfg_err> {
                let __hw_f: fn(&#value, ::core::option::Option<&#config>)
                    -> ::core::result::Result<#config, #cfg_err> = #f;
                __hw_f(__hw_rule.rule_json(), __hw_rule.global())
            }
        }
    });

    let on_tick = input.on_tick.unwrap_or_default();
    let ticks = on_tick.iter().map(|t| {
        let period = &t.period;
        let func = &t.func;
        let period = quote_spanned! {period.span()=>
            let __hw_period: ::core::time::Duration = #period;
        };
        let func = quote_spanned! {func.span()=>
            let __hw_f: fn(&mut #krate::PluginContext<'_, #config>) = #func;
        };
        quote! {
            {
                #period
                #func
                __hw_ctx.register_tick(__hw_period, __hw_f);
            }
        }
    });
    let start = input.on_plugin_start.as_ref().map_or_else(
        || quote!(::core::result::Result::Ok(())),
        |f| {
            quote_spanned! {f.span()=>
                {
                    let __hw_f: fn(&mut #krate::PluginContext<'_, #config>)
                        -> ::core::result::Result<(), #krate::StartError> = #f;
                    __hw_f(__hw_ctx)
                }
            }
        },
    );
    let has_start = input.on_plugin_start.is_some() || !on_tick.is_empty();
    let on_plugin_start = has_start.then(|| {
        quote! {
            fn on_plugin_start(
                __hw_ctx: &mut #krate::PluginContext<'_, #config>,
            ) -> ::core::result::Result<(), #krate::StartError> {
                #(#ticks)*
                #start
            }
        }
    });

    let on_queue_ready = input.on_queue_ready.as_ref().map(|f| {
        quote_spanned! {f.span()=>
            fn on_queue_ready(__hw_ctx: &mut #krate::PluginContext<'_, #config>, __hw_queue: u32) {
                let __hw_f: fn(&mut #krate::PluginContext<'_, #config>, u32) = #f;
                __hw_f(__hw_ctx, __hw_queue)
            }
        }
    });

    let capture = input.capture_request_line.map(|b| {
        quote_spanned! {b.span()=>
            const CAPTURE_REQUEST_LINE: bool = #b;
        }
    });

    let skip_binary = input.skip_binary_bodies.map(|b| {
        quote_spanned! {b.span()=>
            const SKIP_BINARY_BODIES: bool = #b;
        }
    });

    let ctx_ty = quote!(&mut #krate::HttpContext<#state>);
    let mut fields = Vec::new();
    for (key, f) in &input.hooks {
        let sp = f.span();
        let ty = match key.to_string().as_str() {
            "on_request_headers" | "on_response_headers" => {
                quote_spanned! {sp=> fn(#ctx_ty, &#config) -> #krate::HeaderAction }
            }
            "on_request_body" | "on_response_body" => {
                quote_spanned! {sp=> fn(#ctx_ty, &#config, &[u8]) -> #krate::DataAction }
            }
            "on_streaming_request_body" | "on_streaming_response_body" => quote_spanned! {sp=>
                fn(#ctx_ty, &#config, &[u8], bool) -> ::core::option::Option<::std::vec::Vec<u8>>
            },
            _ => quote_spanned! {sp=> fn(#ctx_ty, &#config) },
        };
        fields.push(quote_spanned! {sp=>
            #key: ::core::option::Option::Some({
                let __hw_f: #ty = #f;
                __hw_f
            }),
        });
    }

    Ok(quote! {
        /// The plugin registered by `set_ctx!`.
        #[derive(Debug, Clone, Copy, Default)]
        #[allow(dead_code)]
        #plugin_vis struct #plugin;

        #[allow(clippy::type_complexity)]
        impl #krate::HttpPlugin for #plugin {
            const NAME: &'static str = #name;
            const HOOKS: #krate::Hooks<Self> = #krate::Hooks {
                #(#fields)*
                ..#krate::Hooks::NONE
            };
            #capture
            #skip_binary
            type Config = #config;
            type State = #state;

            fn parse_config(__hw_json: &#value) -> ::core::result::Result<#config, #cfg_err> {
                #parse_config
            }

            #parse_rule_config
            #on_plugin_start
            #on_queue_ready
        }

        #krate::plugin_entry!(#plugin);
    })
}
