//! The `set_ctx!` registration macro of `higress-wrapper`. Use it through
//! `higress_wrapper::set_ctx!`; the documentation lives there.
//!
//! The macro only forwards: it parses `key: value` pairs, and generates an
//! `impl higress_wrapper::HttpPlugin` whose methods call your functions
//! through typed function pointers spanned on your function names, so a
//! wrong signature is reported at your code with the expected type.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{bracketed, parenthesized, Expr, Ident, LitStr, Path, Token, Type};

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
    "on_request_headers",
    "on_request_body",
    "on_streaming_request_body",
    "on_response_headers",
    "on_response_body",
    "on_streaming_response_body",
    "on_stream_done",
];

struct Tick {
    period: Expr,
    func: Path,
}

impl Parse for Tick {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let content;
        parenthesized!(content in input);
        let period: Expr = content.parse()?;
        content.parse::<Token![,]>()?;
        let func: Path = content.parse()?;
        let _ = content.parse::<Option<Token![,]>>()?;
        Ok(Tick { period, func })
    }
}

#[derive(Default)]
struct Input {
    name: Option<LitStr>,
    config: Option<Type>,
    state: Option<Type>,
    plugin: Option<Ident>,
    parse_config: Option<Path>,
    parse_rule_config: Option<Path>,
    on_plugin_start: Option<Path>,
    on_tick: Vec<Tick>,
    hooks: Vec<(Ident, Path)>,
}

fn set_once<T>(slot: &mut Option<T>, key: &Ident, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(key.span(), format!("`{key}` is given twice")));
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
                        return Err(syn::Error::new(v.span(), "the plugin name must not be empty"));
                    }
                    set_once(&mut out.name, &key, v)?;
                }
                "config" => set_once(&mut out.config, &key, input.parse()?)?,
                "state" => set_once(&mut out.state, &key, input.parse()?)?,
                "plugin" => set_once(&mut out.plugin, &key, input.parse()?)?,
                "parse_config" => set_once(&mut out.parse_config, &key, input.parse()?)?,
                "parse_rule_config" => set_once(&mut out.parse_rule_config, &key, input.parse()?)?,
                "on_plugin_start" => set_once(&mut out.on_plugin_start, &key, input.parse()?)?,
                "on_tick" => {
                    if !out.on_tick.is_empty() {
                        return Err(syn::Error::new(key.span(), "`on_tick` is given twice"));
                    }
                    let content;
                    bracketed!(content in input);
                    let ticks: Punctuated<Tick, Token![,]> =
                        content.parse_terminated(Tick::parse, Token![,])?;
                    out.on_tick = ticks.into_iter().collect();
                }
                k if KEYS.contains(&k) => {
                    if out.hooks.iter().any(|(h, _)| h == &key) {
                        return Err(syn::Error::new(key.span(), format!("`{key}` is given twice")));
                    }
                    let path: Path = input.parse()?;
                    out.hooks.push((key, path));
                }
                _ => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown key `{key}` in set_ctx!; expected one of: {}",
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
            "set_ctx! needs the plugin name: `name: \"my-plugin\"`",
        )
    })?;
    let config = input.config.ok_or_else(|| {
        syn::Error::new(
            Span::call_site(),
            "set_ctx! needs the config type: `config: MyConfig` (use `config: ()` with `parse_config` for none)",
        )
    })?;
    let state = input.state.map_or_else(|| quote!(()), |t| quote!(#t));
    let plugin = input
        .plugin
        .unwrap_or_else(|| Ident::new("Plugin", Span::call_site()));
    let value = quote!(#krate::__private::serde_json::Value);
    let cfg_err = quote!(#krate::ConfigError);

    let parse_config = match &input.parse_config {
        Some(f) => quote_spanned! {f.span()=>
            let f: fn(&#value) -> ::core::result::Result<#config, #cfg_err> = #f;
            f(json)
        },
        None => quote_spanned! {config.span()=>
            #krate::__private::from_json::<#config>(json)
        },
    };
    let parse_rule_config = input.parse_rule_config.as_ref().map(|f| {
        quote_spanned! {f.span()=>
            fn parse_rule_config(
                rule: &#krate::RuleInput<'_, #config>,
            ) -> ::core::result::Result<#config, #cfg_err> {
                let f: fn(&#value, ::core::option::Option<&#config>)
                    -> ::core::result::Result<#config, #cfg_err> = #f;
                f(rule.rule_json(), rule.global())
            }
        }
    });

    let ticks = input.on_tick.iter().map(|t| {
        let period = &t.period;
        let func = &t.func;
        quote_spanned! {func.span()=>
            {
                let f: fn(&mut #krate::PluginContext<'_, #config>) = #func;
                ctx.register_tick(#period, f);
            }
        }
    });
    let start = input.on_plugin_start.as_ref().map_or_else(
        || quote!(::core::result::Result::Ok(())),
        |f| {
            quote_spanned! {f.span()=>
                {
                    let f: fn(&mut #krate::PluginContext<'_, #config>)
                        -> ::core::result::Result<(), #krate::StartError> = #f;
                    f(ctx)
                }
            }
        },
    );
    let has_start = input.on_plugin_start.is_some() || !input.on_tick.is_empty();
    let on_plugin_start = has_start.then(|| {
        quote! {
            fn on_plugin_start(
                ctx: &mut #krate::PluginContext<'_, #config>,
            ) -> ::core::result::Result<(), #krate::StartError> {
                #(#ticks)*
                #start
            }
        }
    });

    let ctx_ty = quote!(&mut #krate::HttpContext<#state>);
    let mut hooks_flags = [false; 4];
    let mut methods = Vec::new();
    for (key, f) in &input.hooks {
        let sp = f.span();
        let method = match key.to_string().as_str() {
            "on_request_headers" | "on_response_headers" => quote_spanned! {sp=>
                fn #key(ctx: #ctx_ty, config: &#config) -> #krate::HeaderAction {
                    let f: fn(#ctx_ty, &#config) -> #krate::HeaderAction = #f;
                    f(ctx, config)
                }
            },
            "on_request_body" | "on_response_body" => quote_spanned! {sp=>
                fn #key(ctx: #ctx_ty, config: &#config, body: &[u8]) -> #krate::DataAction {
                    let f: fn(#ctx_ty, &#config, &[u8]) -> #krate::DataAction = #f;
                    f(ctx, config, body)
                }
            },
            "on_streaming_request_body" | "on_streaming_response_body" => quote_spanned! {sp=>
                fn #key(
                    ctx: #ctx_ty,
                    config: &#config,
                    chunk: &[u8],
                    end_of_stream: bool,
                ) -> ::core::option::Option<::std::vec::Vec<u8>> {
                    let f: fn(#ctx_ty, &#config, &[u8], bool)
                        -> ::core::option::Option<::std::vec::Vec<u8>> = #f;
                    f(ctx, config, chunk, end_of_stream)
                }
            },
            _ => quote_spanned! {sp=>
                fn #key(ctx: #ctx_ty, config: &#config) {
                    let f: fn(#ctx_ty, &#config) = #f;
                    f(ctx, config)
                }
            },
        };
        match key.to_string().as_str() {
            "on_request_body" => hooks_flags[0] = true,
            "on_streaming_request_body" => hooks_flags[1] = true,
            "on_response_body" => hooks_flags[2] = true,
            "on_streaming_response_body" => hooks_flags[3] = true,
            _ => {}
        }
        methods.push(method);
    }
    let [request_body, streaming_request_body, response_body, streaming_response_body] =
        hooks_flags;

    Ok(quote! {
        /// The plugin registered by `set_ctx!`.
        #[derive(Debug, Clone, Copy, Default)]
        pub struct #plugin;

        impl #krate::HttpPlugin for #plugin {
            const NAME: &'static str = #name;
            const HOOKS: #krate::Hooks = #krate::Hooks {
                request_body: #request_body,
                streaming_request_body: #streaming_request_body,
                response_body: #response_body,
                streaming_response_body: #streaming_response_body,
            };
            type Config = #config;
            type State = #state;

            fn parse_config(json: &#value) -> ::core::result::Result<#config, #cfg_err> {
                #parse_config
            }

            #parse_rule_config
            #on_plugin_start
            #(#methods)*
        }

        #[cfg(target_arch = "wasm32")]
        #krate::__private::proxy_wasm::main! {{
            #krate::__private::register::<#plugin>();
        }}
    })
}
