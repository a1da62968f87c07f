//! HTTP side of the catalogue: the public list, search and detail (served
//! from the response cache), and tutor/admin management.

use poem::http::{HeaderName, HeaderValue};
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, OpenApi, SecurityScheme};

use super::input::{CreateOffering, UpdateOffering, slug_from_title};
use super::model::{NewOffering, Offering, OfferingStatus, OfferingType};
use super::repo::{self, ListFilter, Sort};
use crate::auth::model::Role;
use crate::auth::{BearerAuth, Principal};
use crate::cache::{CachedJson, CachedResponse, PRIVATE_CACHE_CONTROL, PUBLIC_CACHE_CONTROL};
use crate::error::declared::*;
use crate::error::{ApiResult, Error};
use crate::paging::Page;
use crate::state::AppState;
use crate::tags::ApiTags;
use crate::text::Text;

pub struct CatalogueApi;

/// Order of the offerings list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum SortParam {
    /// Newest first (the default without `q`).
    #[oai(rename = "-createdAt")]
    NewestFirst,
    /// Oldest first.
    #[oai(rename = "createdAt")]
    OldestFirst,
    /// Cheapest first, by `priceFrom`.
    #[oai(rename = "price")]
    PriceAsc,
    /// Dearest first, by `priceFrom`.
    #[oai(rename = "-price")]
    PriceDesc,
    /// Alphabetical by title.
    #[oai(rename = "title")]
    Title,
    /// Best match first (the default with `q`; needs `q`).
    #[oai(rename = "relevance")]
    Relevance,
}

impl SortParam {
    fn name(self) -> &'static str {
        match self {
            SortParam::NewestFirst => "-createdAt",
            SortParam::OldestFirst => "createdAt",
            SortParam::PriceAsc => "price",
            SortParam::PriceDesc => "-price",
            SortParam::Title => "title",
            SortParam::Relevance => "relevance",
        }
    }

    fn sort(self) -> Sort {
        match self {
            SortParam::NewestFirst => Sort::NewestFirst,
            SortParam::OldestFirst => Sort::OldestFirst,
            SortParam::PriceAsc => Sort::PriceAsc,
            SortParam::PriceDesc => Sort::PriceDesc,
            SortParam::Title => Sort::Title,
            SortParam::Relevance => Sort::Relevance,
        }
    }
}

/// The caller, if a valid bearer token came with the request; anonymous
/// otherwise. Used where signing in only widens what is visible.
#[derive(SecurityScheme)]
pub enum OptionalAuth {
    Bearer(BearerAuth),
    #[oai(fallback)]
    Anonymous,
}

impl OptionalAuth {
    fn principal(&self) -> Option<&Principal> {
        match self {
            OptionalAuth::Bearer(auth) => Some(&auth.0),
            OptionalAuth::Anonymous => None,
        }
    }
}

/// A created offering.
#[derive(ApiResponse)]
pub enum Created {
    /// Created as a DRAFT; publish it to list it.
    #[oai(status = 201)]
    Created(
        Json<Offering>,
        /// Where the offering can be read.
        #[oai(header = "Location")]
        String,
    ),
}

/// Separates the parts of a cache key; cannot occur in a query value.
const SEP: char = '\u{1f}';

#[OpenApi(tag = "ApiTags::Catalogue")]
impl CatalogueApi {
    /// List and search offerings
    ///
    /// PUBLISHED offerings, each with its variants, as a bare array paged
    /// with `page` and `limit`; `X-Total-Count` and `Link` describe the
    /// pages. `q` searches title, summary and tags (every word must match,
    /// the last as a prefix) and sorts by relevance unless `sort` says
    /// otherwise. Answers come from the server's response cache; send the
    /// `ETag` back in `If-None-Match` to get a 304.
    #[oai(path = "/offerings", method = "get", operation_id = "listOfferings")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        /// Full-text search over title, summary and tags.
        #[oai(validator(max_length = 200))]
        q: Query<Option<String>>,
        /// Only offerings of this type.
        #[oai(name = "type")]
        kind: Query<Option<OfferingType>>,
        /// Only offerings with this tag.
        #[oai(validator(max_length = 30))]
        tag: Query<Option<String>>,
        /// Only offerings in this category.
        #[oai(validator(max_length = 50))]
        category: Query<Option<String>>,
        /// Only offerings of this tutor.
        #[oai(name = "tutorId", validator(max_length = 64))]
        tutor_id: Query<Option<String>>,
        /// Order: `-createdAt` (default), `createdAt`, `price`, `-price`,
        /// `title`, or `relevance` (default with `q`).
        sort: Query<Option<SortParam>>,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<i64>>,
        /// Items per page, 1 to 100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<i64>>,
        /// An ETag from an earlier answer.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> ApiResult<CachedJson<Vec<Offering>, true>, { TOO_MANY_REQUESTS | BAD_REQUEST | SERVER }>
    {
        let page = Page::new(page.0, limit.0)?;
        let q = normalized(q.0.as_deref(), false);
        let tag = normalized(tag.0.as_deref(), true);
        let category = normalized(category.0.as_deref(), true);
        let tutor_id = normalized(tutor_id.0.as_deref(), false);
        let sort = match (sort.0, &q) {
            (Some(SortParam::Relevance), None) => {
                return Err(Error::validation("sort", "sort=relevance needs q").into());
            }
            (Some(sort), _) => sort,
            (None, Some(_)) => SortParam::Relevance,
            (None, None) => SortParam::NewestFirst,
        };
        let kind = kind.0;

        let request = format!(
            "list{SEP}{}{SEP}{}{SEP}{}{SEP}{}{SEP}{}{SEP}{}{SEP}{}{SEP}{}",
            q.as_deref().unwrap_or(""),
            kind.map_or("", OfferingType::as_str),
            tag.as_deref().unwrap_or(""),
            category.as_deref().unwrap_or(""),
            tutor_id.as_deref().unwrap_or(""),
            sort.name(),
            page.page,
            page.limit,
        );
        let key = state.cache.key(&request);
        if let Some(entry) = state.cache.get(&key) {
            return Ok(CachedJson::new(
                entry,
                if_none_match.0.as_deref(),
                PUBLIC_CACHE_CONTROL,
            ));
        }

        let mut query = Vec::new();
        for (name, value) in [
            ("q", &q),
            ("type", &kind.map(|k| k.as_str().to_string())),
            ("tag", &tag),
            ("category", &category),
            ("tutorId", &tutor_id),
        ] {
            if let Some(value) = value {
                query.push((name, value.clone()));
            }
        }
        if sort != SortParam::NewestFirst || q.is_some() {
            query.push(("sort", sort.name().to_string()));
        }
        let search = q.as_deref().map(repo::match_expression);
        let (offerings, total) = match search {
            // Nothing searchable in q (only punctuation): nothing matches.
            Some(None) => (Vec::new(), 0),
            search => {
                let filter = ListFilter {
                    search: search.flatten(),
                    kind,
                    tag,
                    category,
                    tutor_id,
                    sort: sort.sort(),
                    page,
                };
                state
                    .db
                    .read(move |conn| Ok(repo::list_published(conn, &filter)?))
                    .await?
            }
        };
        let link = page.link_header(&crate::api_base::api_path("/offerings"), &query, total);
        let entry = CachedResponse::json(
            &offerings,
            vec![
                (
                    HeaderName::from_static("x-total-count"),
                    HeaderValue::from(total),
                ),
                (
                    HeaderName::from_static("link"),
                    HeaderValue::from_str(&link)
                        .map_err(|e| Error::internal(anyhow::anyhow!(e)))?,
                ),
            ],
        )?;
        state.cache.insert(key, entry.clone());
        Ok(CachedJson::new(
            entry,
            if_none_match.0.as_deref(),
            PUBLIC_CACHE_CONTROL,
        ))
    }

    /// Get an offering
    ///
    /// A PUBLISHED offering by slug, with its variants. Drafts and archived
    /// offerings are 404, except to their tutor and to admins. Send the
    /// `ETag` back in `If-None-Match` to get a 304.
    #[oai(
        path = "/offerings/:slug",
        method = "get",
        operation_id = "getOffering"
    )]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: OptionalAuth,
        /// The offering's slug.
        #[oai(validator(max_length = 200))]
        slug: Path<String>,
        /// An ETag from an earlier answer.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> ApiResult<
        CachedJson<Offering, false>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | NOT_FOUND | SERVER },
    > {
        let key = state.cache.key(&format!("slug{SEP}{}", slug.0));
        if let Some(entry) = state.cache.get(&key) {
            return Ok(CachedJson::new(
                entry,
                if_none_match.0.as_deref(),
                PUBLIC_CACHE_CONTROL,
            ));
        }
        let wanted = slug.0.clone();
        let offering = state
            .db
            .read(move |conn| Ok(repo::by_slug(conn, &wanted)?))
            .await?
            .ok_or_else(not_found)?;
        if offering.status == OfferingStatus::Published {
            let entry = CachedResponse::json(&offering, Vec::new())?;
            state.cache.insert(key, entry.clone());
            return Ok(CachedJson::new(
                entry,
                if_none_match.0.as_deref(),
                PUBLIC_CACHE_CONTROL,
            ));
        }
        match auth.principal() {
            Some(p) if p.acts_for(&offering.tutor.id) => {
                let entry = CachedResponse::json(&offering, Vec::new())?;
                Ok(CachedJson::new(
                    entry,
                    if_none_match.0.as_deref(),
                    PRIVATE_CACHE_CONTROL,
                ))
            }
            _ => Err(not_found().into()),
        }
    }

    /// Create an offering (TUTOR, ADMIN)
    ///
    /// Creates a DRAFT owned by the calling tutor (an admin may name another
    /// tutor with `tutorId`). The slug is derived from the title when absent
    /// and made unique; it never changes afterwards.
    #[oai(path = "/offerings", method = "post", operation_id = "createOffering")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<CreateOffering>,
    ) -> ApiResult<
        Created,
        { TOO_MANY_REQUESTS | JSON_BODY | UNAUTHORIZED | FORBIDDEN | CONFLICT | SERVER },
    > {
        let principal = auth.0;
        principal.require_role(&[Role::Tutor, Role::Admin])?;
        let tutor_id = match body.0.tutor_id.clone().map(Text::into_inner) {
            Some(id) if id != principal.user_id => {
                principal.require_role(&[Role::Admin])?;
                id
            }
            _ => principal.user_id.clone(),
        };
        let valid = body.0.validate()?;
        let now = state.clock.stamp();
        let offering = state
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let tutor_role = crate::auth::repo::user_by_id(&tx, &tutor_id)?.map(|u| u.role);
                if !matches!(tutor_role, Some(Role::Tutor | Role::Admin)) {
                    return Err(Error::validation(
                        "tutorId",
                        "tutorId must name a tutor account",
                    ));
                }
                let slug = match valid.slug {
                    Some(slug) if repo::slug_exists(&tx, &slug)? => {
                        return Err(
                            Error::conflict("CONFLICT", "this slug is taken").with_field("slug")
                        );
                    }
                    Some(slug) => slug,
                    None => repo::free_slug(&tx, &slug_from_title(&valid.title))?,
                };
                let id = crate::ids::new_id();
                repo::insert_offering(
                    &tx,
                    &NewOffering {
                        id: id.clone(),
                        slug,
                        tutor_id,
                        kind: valid.kind,
                        title: valid.title,
                        summary: valid.summary,
                        description: valid.description,
                        thumbnail: valid.thumbnail,
                        category: valid.category,
                        tags: valid.tags,
                        level: valid.level,
                        language: valid.language,
                        status: OfferingStatus::Draft,
                        variants: valid.variants,
                        created_at: now,
                    },
                )?;
                let created = repo::by_id(&tx, &id)?.ok_or_else(vanished)?;
                tx.commit()?;
                Ok(created)
            })
            .await?;
        state.cache.invalidate();
        let location = crate::api_base::api_path(&format!("/offerings/{}", offering.slug));
        Ok(Created::Created(Json(offering), location))
    }

    /// Change an offering (owner, ADMIN)
    ///
    /// Changes the given fields; `null` clears an optional field. `variants`
    /// replaces the whole set: list existing variants with their `id` to keep
    /// them. The slug never changes. The next read sees the change. A
    /// `capacity` below the seats already taken or held is a 409
    /// `CAPACITY_BELOW_TAKEN`; raising it frees places at once.
    #[oai(
        path = "/offerings/:id",
        method = "patch",
        operation_id = "updateOffering"
    )]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The offering's id.
        #[oai(validator(max_length = 64))]
        id: Path<String>,
        body: Json<UpdateOffering>,
    ) -> ApiResult<
        Json<Offering>,
        {
            TOO_MANY_REQUESTS | JSON_BODY | UNAUTHORIZED | FORBIDDEN | NOT_FOUND | CONFLICT | SERVER
        },
    > {
        let changes = body.0.validate()?;
        let principal = auth.0;
        let id = id.0;
        let now = state.clock.stamp();
        let offering = state
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let current = repo::by_id(&tx, &id)?.ok_or_else(not_found)?;
                check_owner(&principal, &current.tutor.id)?;
                if let Some(variants) = &changes.variants {
                    for (i, v) in variants.iter().enumerate() {
                        if let Some(vid) = &v.id
                            && !current.variants.iter().any(|c| &c.id == vid)
                        {
                            return Err(Error::validation(
                                format!("variants[{i}].id"),
                                "id must name a variant of this offering",
                            ));
                        }
                        if let (Some(vid), Some(capacity)) = (&v.id, v.capacity) {
                            let taken = repo::seats_taken(&tx, vid, &now)?;
                            if taken > capacity {
                                return Err(Error::conflict(
                                    "CAPACITY_BELOW_TAKEN",
                                    format!(
                                        "{taken} seats of this variant are taken or held; its capacity cannot go below that"
                                    ),
                                )
                                .with_field(format!("variants[{i}].capacity")));
                            }
                        }
                    }
                }
                repo::update_offering(&tx, &id, &changes, &now)?;
                let updated = repo::by_id(&tx, &id)?.ok_or_else(vanished)?;
                tx.commit()?;
                Ok(updated)
            })
            .await?;
        state.cache.invalidate();
        Ok(Json(offering))
    }

    /// Publish an offering (owner, ADMIN)
    ///
    /// Makes a DRAFT or ARCHIVED offering PUBLISHED: listed, searchable and
    /// buyable. Publishing a published offering changes nothing.
    #[oai(
        path = "/offerings/:id/publish",
        method = "post",
        operation_id = "publishOffering"
    )]
    async fn publish(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The offering's id.
        #[oai(validator(max_length = 64))]
        id: Path<String>,
    ) -> ApiResult<
        Json<Offering>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | FORBIDDEN | NOT_FOUND | SERVER },
    > {
        Ok(Json(
            set_status(&state, auth.0, id.0, OfferingStatus::Published).await?,
        ))
    }

    /// Archive an offering (owner, ADMIN)
    ///
    /// Takes an offering off the catalogue; existing orders and enrollments
    /// are unaffected. It can be published again later.
    #[oai(
        path = "/offerings/:id/archive",
        method = "post",
        operation_id = "archiveOffering"
    )]
    async fn archive(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The offering's id.
        #[oai(validator(max_length = 64))]
        id: Path<String>,
    ) -> ApiResult<
        Json<Offering>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | FORBIDDEN | NOT_FOUND | SERVER },
    > {
        Ok(Json(
            set_status(&state, auth.0, id.0, OfferingStatus::Archived).await?,
        ))
    }
}

async fn set_status(
    state: &AppState,
    principal: Principal,
    id: String,
    status: OfferingStatus,
) -> Result<Offering, Error> {
    let now = state.clock.stamp();
    let offering = state
        .db
        .write(move |conn| {
            let tx = conn.transaction()?;
            let (owner, current) = repo::owner_of(&tx, &id)?.ok_or_else(not_found)?;
            check_owner(&principal, &owner)?;
            if current != status {
                repo::set_status(&tx, &id, status, &now)?;
            }
            let updated = repo::by_id(&tx, &id)?.ok_or_else(vanished)?;
            tx.commit()?;
            Ok(updated)
        })
        .await?;
    state.cache.invalidate();
    Ok(offering)
}

/// 403 unless the caller owns the offering or is an admin.
fn check_owner(principal: &Principal, owner: &str) -> Result<(), Error> {
    if principal.acts_for(owner) {
        Ok(())
    } else {
        Err(Error::forbidden(
            "only the offering's tutor or an admin may change it",
        ))
    }
}

fn not_found() -> Error {
    Error::not_found("no such offering")
}

fn vanished() -> Error {
    Error::internal(anyhow::anyhow!(
        "offering vanished inside its own transaction"
    ))
}

/// Trims a query value (and lower-cases it when asked); empty is absent.
fn normalized(value: Option<&str>, lowercase: bool) -> Option<String> {
    let value = value?.split_whitespace().collect::<Vec<_>>().join(" ");
    if value.is_empty() {
        None
    } else if lowercase {
        Some(value.to_lowercase())
    } else {
        Some(value)
    }
}
