//! greg-jenkins.
