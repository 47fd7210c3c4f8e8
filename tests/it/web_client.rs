//! A browser for handler tests: requests go straight into the router (`oneshot`) with the
//! cookies it was given and the client address it is set to.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use mailroom::web::session::Client;
use tower::ServiceExt;

use crate::harness::TestServer;

/// A browser as the panel sees it: cookies, and the address it comes from.
pub struct Browser {
    pub router: Router,
    pub cookies: Vec<(String, String)>,
    pub client: Client,
}

pub struct Page {
    pub status: StatusCode,
    pub location: String,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Browser {
    pub fn new(server: &TestServer) -> Browser {
        Browser {
            router: server.running.router.clone(),
            cookies: Vec::new(),
            client: Client {
                ip: [127, 0, 0, 1].into(),
                https: false,
            },
        }
    }

    pub async fn send(&mut self, req: Request<Body>) -> Page {
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(self.client);
        parts
            .headers
            .insert(header::HOST, "localhost".parse().unwrap());
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            parts
                .headers
                .insert(header::COOKIE, c.join("; ").parse().unwrap());
        }
        let res: Response<Body> = self
            .router
            .clone()
            .oneshot(Request::from_parts(parts, body))
            .await
            .unwrap();
        for v in res.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !attrs.contains("Max-Age=0") {
                self.cookies.push((k.to_string(), val.to_string()));
            }
        }
        let status = res.status();
        let headers = res.headers().clone();
        let location = res
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = axum::body::to_bytes(res.into_body(), 10 << 20)
            .await
            .unwrap();
        Page {
            status,
            location,
            headers,
            body: String::from_utf8_lossy(&body).to_string(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", mailroom::web::admin::url_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// A `multipart/form-data` POST with text `fields` and `files` (field name, file name,
    /// content type, bytes).
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &str, &[u8])],
    ) -> Page {
        let boundary = "----mailroom-test-boundary-7MA4YWxkTrZu0gW";
        let mut body: Vec<u8> = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        for (k, name, ct, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        self.send(
            Request::post(path)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// Signs in through the admin form.
    pub async fn sign_in(&mut self, address: &str, password: &str) -> Page {
        self.sign_in_at("/admin", address, password).await
    }

    /// Signs in through the form of `area` (`/admin` or `/mail`).
    pub async fn sign_in_at(&mut self, area: &str, address: &str, password: &str) -> Page {
        let form = self.get(&format!("{area}/login")).await;
        assert_eq!(form.status, StatusCode::OK);
        let token = field(&form.body, "login_token");
        self.post(
            &format!("{area}/login"),
            &[
                ("address", address),
                ("password", password),
                ("login_token", &token),
                ("next", area),
            ],
        )
        .await
    }

    pub async fn csrf(&mut self) -> String {
        self.csrf_of("/admin").await
    }

    /// The CSRF token in the page at `path`.
    pub async fn csrf_of(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        field(&page.body, "csrf")
    }
}

/// The value of the first hidden input named `name`.
pub fn field(html: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + key.len();
    html[start..].split('"').next().unwrap().to_string()
}
