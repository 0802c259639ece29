//! A small history-API router: the current path and query in a signal, links within the
//! site followed without a reload, Back and Forward through `popstate`. It does what the
//! app used of leptos_router, which was a tenth of the page's WASM.

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// Where the page is: the path and the query (without its `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: String,
    pub query: String,
}

impl Location {
    /// The value of `name` in the query, if it is there (`""` when it has no `=`).
    pub fn query_value(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    }
}

/// The router shared through the context.
#[derive(Debug, Clone, Copy)]
pub struct Router {
    pub location: RwSignal<Location>,
}

/// The router shared through the context.
pub fn use_router() -> Router {
    expect_context()
}

impl Router {
    /// Follows the address bar from now on; call once, when the app starts.
    pub fn install() -> Self {
        let router = Self {
            location: RwSignal::new(current()),
        };
        let window = window();
        let popstate = Closure::<dyn FnMut()>::new(move || router.location.set(current()));
        let click = Closure::<dyn FnMut(web_sys::MouseEvent)>::new(move |event| {
            router.follow_link(&event);
        });
        // Both listeners live as long as the page.
        let _ =
            window.add_event_listener_with_callback("popstate", popstate.as_ref().unchecked_ref());
        let _ = window.add_event_listener_with_callback("click", click.as_ref().unchecked_ref());
        popstate.forget();
        click.forget();
        router
    }

    /// Goes to `to` (a path with an optional query), in place of the current entry when
    /// `replace`; the same address again adds no history entry.
    pub fn navigate(self, to: &str, replace: bool) {
        let window = window();
        if let Ok(history) = window.history() {
            let here = window.location().href().ok();
            let same = here.as_deref().is_some_and(|here| full_path(here) == to);
            let _ = if replace {
                history.replace_state_with_url(&JsValue::NULL, "", Some(to))
            } else if !same {
                history.push_state_with_url(&JsValue::NULL, "", Some(to))
            } else {
                Ok(())
            };
        }
        self.location.set(current());
        scroll_after_navigation(&window);
    }

    /// A click on a link to this site, without modifier keys, target, `download` or
    /// `rel="external"`, navigates here instead of reloading.
    fn follow_link(self, event: &web_sys::MouseEvent) {
        if event.default_prevented()
            || event.button() != 0
            || event.meta_key()
            || event.alt_key()
            || event.ctrl_key()
            || event.shift_key()
        {
            return;
        }
        let path = event.composed_path();
        // The outermost link, as leptos_router did.
        let anchor = (0..path.length())
            .rev()
            .find_map(|i| path.get(i).dyn_into::<web_sys::HtmlAnchorElement>().ok());
        let Some(anchor) = anchor else {
            return;
        };
        let href = anchor.href();
        let rel = anchor.get_attribute("rel").unwrap_or_default();
        if !anchor.target().is_empty()
            || href.is_empty()
            || anchor.has_attribute("download")
            || rel.split([' ', '\t']).any(|part| part == "external")
        {
            return;
        }
        let Ok(url) = web_sys::Url::new(&href) else {
            return;
        };
        if window().location().origin().ok() != Some(url.origin()) {
            return;
        }
        event.prevent_default();
        self.navigate(
            &format!("{}{}{}", url.pathname(), url.search(), url.hash()),
            false,
        );
    }
}

/// The path, query and fragment of an absolute URL.
fn full_path(href: &str) -> String {
    web_sys::Url::new(href)
        .map(|url| format!("{}{}{}", url.pathname(), url.search(), url.hash()))
        .unwrap_or_default()
}

fn current() -> Location {
    let location = window().location();
    let search = location.search().unwrap_or_default();
    Location {
        path: location.pathname().unwrap_or_default(),
        query: search.strip_prefix('?').unwrap_or(&search).to_owned(),
    }
}

/// To the fragment's element if there is one, else to the top, as after a page load.
fn scroll_after_navigation(window: &web_sys::Window) {
    let hash = window.location().hash().unwrap_or_default();
    let target = hash
        .strip_prefix('#')
        .filter(|id| !id.is_empty())
        .and_then(|id| document().get_element_by_id(id));
    match target {
        Some(element) => element.scroll_into_view(),
        None => window.scroll_to_with_x_and_y(0.0, 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_found_by_name() {
        let location = Location {
            path: "/help/helper".into(),
            query: "outdated=1&then=card".into(),
        };
        assert_eq!(location.query_value("then").as_deref(), Some("card"));
        assert_eq!(location.query_value("outdated").as_deref(), Some("1"));
        assert_eq!(location.query_value("other"), None);
        let bare = Location {
            path: "/".into(),
            query: "outdated".into(),
        };
        assert_eq!(bare.query_value("outdated").as_deref(), Some(""));
    }
}
