//! Helpers shared by the integration tests: an HTTP client with the crypto provider installed,
//! and a started world.
#![allow(dead_code)]

use greg_core::RepoName;
use greg_testkit::{FakeGithub, FakeJenkins, World};

pub const TOKEN: &str = "ghp_test";

pub fn client() -> reqwest::Client {
    greg_testkit::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub fn repo() -> RepoName {
    RepoName::new("acme", "demo")
}

pub struct Fakes {
    pub world: World,
    pub github: FakeGithub,
    pub jenkins: FakeJenkins,
    pub http: reqwest::Client,
}

pub fn start() -> Fakes {
    let world = World::new("greg-bot");
    let github = FakeGithub::start(world.clone()).expect("github");
    let jenkins = FakeJenkins::start(world.clone()).expect("jenkins");
    world.create_repo(&repo()).expect("repo");
    Fakes {
        world,
        github,
        jenkins,
        http: client(),
    }
}

impl Fakes {
    pub fn gh(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.github.url))
            .header("authorization", format!("token {TOKEN}"))
            .header("accept", "application/vnd.github+json")
    }

    pub fn jk(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.jenkins.url))
            .basic_auth("greg", Some("api-token"))
    }
}
